"""The outbox relay: moves committed events to the ``notifications`` queue in batches.

Runs as a daemon thread in every worker process.  ``FOR UPDATE SKIP LOCKED`` lets several relays share the work;
an event is marked relayed in the same transaction that claimed it, after SQS accepted it, so a crash in between
re-sends it (the notifier drops the duplicate by event key).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa

from engine.broker.envelope import Envelope, to_message
from engine.db.outbox import claim_unrelayed, mark_relayed

log = logging.getLogger(__name__)
BATCH = 100


def relay_once(db: sa.Engine, broker: Any, limit: int = BATCH) -> int:
    """Relay up to ``limit`` events; returns how many.  Raises on database or SQS errors (nothing is marked)."""
    with db.begin() as conn:
        rows = claim_unrelayed(conn, limit)
        if not rows:
            return 0
        messages = [
            to_message(
                Envelope.new(
                    kind="notification",
                    data={"event_type": row["event_type"], "event_key": row["event_key"], "object": row["payload"]},
                    idempotency_scope=row["event_key"],
                    job_id=row["job_id"],
                    correlation_id=(row["payload"] or {}).get("correlation_id"),
                ),
                "notifications",
            )
            for row in rows
        ]
        broker.enqueue_many(messages)
        mark_relayed(conn, [row["id"] for row in rows])
    return len(rows)


class OutboxRelay:
    """Relays in a loop: at once while there is a backlog, else every ``interval`` seconds."""

    def __init__(self, db: sa.Engine, broker: Any, interval: float = 0.2) -> None:
        self._db = db
        self._broker = broker
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, then relay what is left once (events of jobs that finished during shutdown)."""
        self._stop.set()
        self._thread.join(timeout)
        try:
            relay_once(self._db, self._broker)
        except Exception:
            log.warning("final outbox relay failed; the next worker relays these events")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = relay_once(self._db, self._broker)
            except Exception:  # a database or SQS outage: try again later, never kill the worker
                log.exception("outbox relay failed; retrying")
                moved = 0
            if moved < BATCH:
                self._stop.wait(self._interval)
