"""Partial failures of batch calls, with a fake client (no I/O): entry-by-entry retry, then a precise error; the
delete buffer's windows."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine.broker.batching import DeleteBuffer
from engine.broker.broker import SQSBroker
from engine.broker.envelope import Envelope, to_message
from engine.broker.errors import BatchSendError
from pipelines.registry import CATALOGUE


class FakeSQS:
    """Answers SendMessageBatch; entries whose body contains a marker fail as told."""

    class exceptions:
        class QueueDoesNotExist(Exception):
            pass

    def __init__(self, transient_once: set[str], permanent: set[str]) -> None:
        self.transient_once = set(transient_once)
        self.permanent = permanent
        self.batches: list[list[str]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"http://fake/{QueueName}"}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append([e["Id"] for e in Entries])
        ok, failed = [], []
        for entry in Entries:
            n = str(entry["MessageBody"].split('"n":')[1].split("}")[0])
            if n in self.permanent:
                failed.append(
                    {"Id": entry["Id"], "SenderFault": True, "Code": "InvalidParameterValue", "Message": "bad"}
                )
            elif n in self.transient_once:
                self.transient_once.discard(n)
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"})
            else:
                ok.append({"Id": entry["Id"], "MessageId": f"m{n}"})
        return {"Successful": ok, "Failed": failed}


def _messages(count: int) -> list[Any]:
    return [
        to_message(Envelope.new(kind="payment", data={"n": i}, idempotency_scope=f"s{i}", group_id="cus_1"), "payments")
        for i in range(count)
    ]


def _broker(fake: FakeSQS) -> SQSBroker:
    broker = SQSBroker(fake, catalogue=CATALOGUE, prefix="t-")
    broker.declare_queue("payments")
    return broker


def test_failed_entries_are_retried_alone() -> None:
    fake = FakeSQS(transient_once={"3", "12"}, permanent=set())
    broker = _broker(fake)
    sent = broker.enqueue_many(_messages(15))
    assert len(sent) == 15
    assert [len(b) for b in fake.batches] == [10, 1, 5, 1]  # each retry carries only the failed entry
    broker.close()


def test_entries_that_keep_failing_are_reported_with_reasons() -> None:
    fake = FakeSQS(transient_once=set(), permanent={"4"})
    broker = _broker(fake)
    messages = _messages(12)
    with pytest.raises(BatchSendError) as info:
        broker.enqueue_many(messages)
    err = info.value
    assert list(err.failed) == [messages[4].message_id]
    assert err.failed[messages[4].message_id].code == "InvalidParameterValue"
    assert len(err.sent) == 11
    assert [len(b) for b in fake.batches] == [10, 2]  # a sender fault is not retried
    broker.close()


def test_fifo_message_without_group_is_refused_before_sending() -> None:
    fake = FakeSQS(set(), set())
    broker = _broker(fake)
    message = to_message(Envelope.new(kind="payment", data={"n": 1}, idempotency_scope="s"), "payments")
    with pytest.raises(ValueError, match="group_id"):
        broker.enqueue_many([message])
    assert fake.batches == []
    broker.close()


def test_retries_middleware_is_refused() -> None:
    from dramatiq.middleware.retries import Retries

    with pytest.raises(ValueError, match="Retries"):
        SQSBroker(FakeSQS(set(), set()), catalogue=CATALOGUE, middleware=[Retries()])
    broker = SQSBroker(FakeSQS(set(), set()), catalogue=CATALOGUE)
    assert not any(isinstance(m, Retries) for m in broker.middleware)
    broker.close()


class RecordingDeletes:
    """Answers DeleteMessageBatch, recording when each call came and what it carried."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, int]] = []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append((time.monotonic(), QueueUrl, len(Entries)))
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_a_delete_waits_the_window_its_queue_asked_for() -> None:
    fake = RecordingDeletes()
    buffer = DeleteBuffer(fake, flush_seconds=0.05)
    try:
        started = time.monotonic()
        buffer.add("fifo", "h1")  # the buffer's window
        for i in range(3):
            buffer.add("standard", f"s{i}", flush_seconds=0.6)  # a longer window: one call for all three
        time.sleep(0.3)
        assert [(url, n) for _, url, n in fake.calls] == [("fifo", 1)]
        time.sleep(0.6)
        assert [(url, n) for _, url, n in fake.calls] == [("fifo", 1), ("standard", 3)]
        assert fake.calls[1][0] - started >= 0.55
    finally:
        buffer.close()


def test_a_short_window_is_not_held_up_by_a_longer_one_already_pending() -> None:
    fake = RecordingDeletes()
    buffer = DeleteBuffer(fake, flush_seconds=0.05)
    try:
        buffer.add("fifo", "h1", flush_seconds=5.0)
        buffer.add("fifo", "h2")  # the buffer's 0.05 s: both leave then, in one call
        time.sleep(0.4)
        assert [(url, n) for _, url, n in fake.calls] == [("fifo", 2)]
    finally:
        buffer.close()
