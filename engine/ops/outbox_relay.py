"""The outbox relay: moves committed outbox rows to SQS in batches (``SendMessageBatch``, 10 per call).

Notification events go to the ``notifications`` queue; dispatch rows (``engine/db/outbox.py``) carry a job's
envelope to its work queue — the ingest's hand-off.  It runs as a daemon thread in every worker process and in the
ingest process (woken by each accepted job, :meth:`OutboxRelay.kick`); ``FOR UPDATE SKIP LOCKED`` lets several
relays share the work.  A row is marked relayed in the transaction that claimed it, after SQS accepted its message,
so a crash (or a send that timed out after SQS stored it) sends it again: a work-queue copy carries the same
``MessageDeduplicationId`` (the job's scope, which FIFO queues deduplicate for 5 minutes, and a later copy finds its
job already settled), a notification copy is dropped by the notifier by event key.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
import sqlalchemy as sa
from pydantic import ValidationError

from engine.broker.envelope import Envelope, to_message
from engine.broker.errors import BatchSendError
from engine.db.outbox import DISPATCH, claim_unrelayed, mark_relayed
from engine.jobs.kind import Lazy

log = logging.getLogger(__name__)
BATCH = 100


def _message(row: sa.RowMapping) -> dramatiq.Message[Any]:
    """The SQS message an outbox row stands for.  Raises :class:`pydantic.ValidationError` for a broken row."""
    payload = row["payload"] or {}
    if row["event_type"] == DISPATCH:
        return to_message(Envelope.model_validate(payload["envelope"]), str(payload["queue"]))
    return to_message(
        Envelope.new(
            kind="notification",
            data={"event_type": row["event_type"], "event_key": row["event_key"], "object": payload},
            idempotency_scope=row["event_key"],
            job_id=row["job_id"],
            correlation_id=payload.get("correlation_id"),
        ),
        "notifications",
    )


def relay_once(db: sa.Engine, broker: Any, limit: int = BATCH) -> int:
    """Relay up to ``limit`` rows; returns how many were sent.

    Rows SQS refused stay unrelayed for the next round (those it took are marked).  A row whose stored message is
    broken is logged and left in place (its job is re-sent by the reconciler).  A round that sends nothing rolls
    its claim back instead of committing it: the relay polls every fraction of a second, and an empty commit per
    poll was most of a slow run's commits per payment.  Raises on database errors and when a whole send fails
    (nothing is marked).
    """
    with db.connect() as conn, conn.begin() as txn:
        rows = claim_unrelayed(conn, limit)
        ids_by_message: dict[str, int] = {}
        messages = []
        for row in rows:
            try:
                message = _message(row)
            except (ValidationError, KeyError, TypeError) as exc:
                log.error("outbox row %s holds no valid message (%s); left for the reconciler", row["id"], exc)
                continue
            ids_by_message[message.message_id] = row["id"]
            messages.append(message)
        if not messages:
            txn.rollback()  # nothing claimed that could be sent: release the locks, write nothing
            return 0
        sent = list(ids_by_message)
        try:
            broker.enqueue_many(messages)
        except BatchSendError as exc:
            log.warning("outbox relay: %s; those rows are sent again next round", exc)
            sent = [mid for mid in exc.sent if mid in ids_by_message]
        if not sent:
            txn.rollback()
            return 0
        mark_relayed(conn, [ids_by_message[mid] for mid in sent])
    return len(sent)


class OutboxRelay:
    """Relays in a loop: at once while there is a backlog or after :meth:`kick`, else every ``interval`` seconds.

    ``broker`` may be a :class:`~engine.jobs.kind.Lazy` (the ingest starts without SQS); it is built on first use.
    ``linger``: after a kick, wait this long before relaying, so that the rows other requests commit meanwhile go
    in the same ``SendMessageBatch`` and the same claiming transaction (the ingest's: one kick per accepted job).
    """

    def __init__(self, db: sa.Engine, broker: Any, interval: float = 0.2, linger: float = 0.0) -> None:
        self._db = db
        self._broker = broker
        self._interval = interval
        self._linger = linger
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        """Relay now (a row was just committed) instead of at the next interval."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, then relay what is left once (events of jobs that finished during shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        try:
            self.relay_now()
        except Exception:
            log.warning("final outbox relay failed; the next relay sends these rows")

    def relay_now(self) -> int:
        """One round in the caller's thread.  Raises what :func:`relay_once` raises."""
        broker = self._broker() if isinstance(self._broker, Lazy) else self._broker
        return relay_once(self._db, broker)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                moved = self.relay_now()
                failures = 0
            except Exception:  # a database or SQS outage: try again later, never kill the process
                failures += 1
                log.exception("outbox relay failed; retrying")
                moved = 0
            if failures:
                # Back off while SQS or the database is down (at most 5 s); kicks do not shorten the wait.
                self._stop.wait(min(5.0, self._interval * 2**failures))
            elif moved < BATCH and self._wake.wait(self._interval) and self._linger:
                self._stop.wait(self._linger)
