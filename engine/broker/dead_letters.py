"""Dead-letter reasons: the record the broker writes when a message is dead-lettered, and where it goes.

The broker calls :meth:`DeadLetterSink.record` when a message is poison, when an actor asks for an explicit
dead letter, and on the failing receive whose ApproximateReceiveCount reached maxReceiveCount (SQS redrives it
on the next receive).  The PostgreSQL-backed sink lives in ``engine/db``; this module has the protocol plus a
logging sink and an in-memory one for tests.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

log = logging.getLogger(__name__)

DeadLetterSource = Literal["redrive", "poison", "explicit"]


@dataclass(frozen=True)
class DeadLetterRecord:
    """Why one message was dead-lettered.  ``message_id`` is the SQS MessageId of the received message."""

    queue: str
    message_id: str
    job_id: str | None
    kind: str | None
    group_id: str | None
    stage: str | None
    attempts: int
    error_class: str
    error_message: str
    traceback: str | None
    body: str
    source: DeadLetterSource
    failed_at: datetime


@runtime_checkable
class DeadLetterSink(Protocol):
    """Where dead-letter records go.  ``record`` must be thread-safe; an exception it raises is logged by the
    broker and does not stop the message from being dead-lettered (SQS's redrive does not depend on it)."""

    def record(self, record: DeadLetterRecord) -> None: ...


class LoggingDeadLetterSink:
    """Logs every record at ERROR (the default when no database sink is configured)."""

    def record(self, record: DeadLetterRecord) -> None:
        fields = asdict(record)
        fields.pop("body")
        fields.pop("traceback")
        log.error("dead letter: %s", fields)


class MemoryDeadLetterSink:
    """Keeps records in a list (tests); :meth:`wait_for` blocks until ``count`` records arrived."""

    def __init__(self) -> None:
        self.records: list[DeadLetterRecord] = []
        self._cond = threading.Condition()

    def record(self, record: DeadLetterRecord) -> None:
        with self._cond:
            self.records.append(record)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[DeadLetterRecord]:
        """The records once at least ``count`` arrived, or whatever arrived when ``timeout`` seconds passed."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.records) >= count, timeout=timeout)
            return list(self.records)
