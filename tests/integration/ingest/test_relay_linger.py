"""The ingest's outbox relay lingers after a kick: rows committed meanwhile share one SendMessageBatch."""

from __future__ import annotations

import time
import uuid
from typing import Any

from engine.broker.envelope import Envelope
from engine.db.outbox import add_dispatches
from engine.ops.outbox_relay import OutboxRelay


class RecordingBroker:
    """Takes every message it is handed (the relay's side of SQS), one list per ``enqueue_many`` call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def enqueue_many(self, messages: list[Any]) -> list[Any]:
        self.calls.append([m.args[0].get("job_id") for m in messages])
        return messages


def _dispatch(c: Any, job_id: str) -> None:
    envelope = Envelope.new(
        kind="payment", data={}, idempotency_scope=f"test:{job_id}", group_id="cus_linger", job_id=job_id
    )
    with c.db.begin() as conn:
        add_dispatches(conn, [(job_id, "payments.fifo", envelope.to_arg())])


def test_rows_committed_while_the_relay_lingers_go_in_one_batch(container) -> None:  # type: ignore[no-untyped-def]
    broker = RecordingBroker()
    relay = OutboxRelay(container.db, broker, interval=30, linger=0.5)
    relay.start()
    try:
        time.sleep(0.5)  # its first round (whatever earlier tests left) is done; it now waits for a kick
        jobs = [f"job_linger_{uuid.uuid4().hex[:12]}" for _ in range(3)]
        for job_id in jobs:
            _dispatch(container, job_id)
            relay.kick()  # as the ingest does after each accepted job's commit
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while not any(set(jobs) & set(call) for call in broker.calls) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        relay.stop()
    ours = [sorted(set(jobs) & set(call)) for call in broker.calls if set(jobs) & set(call)]
    assert ours == [sorted(jobs)]
