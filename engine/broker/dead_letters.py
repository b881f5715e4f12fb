"""Dead letters: the reason record, where records go, and moving a received message to its DLQ.

The consumer calls :meth:`DeadLetters.move` when a message is poison or an actor asks for an explicit dead
letter, and :meth:`DeadLetters.record` on the failing receive whose ApproximateReceiveCount reached
maxReceiveCount (SQS redrives it on the next receive).  Each hands a :class:`DeadLetterRecord` to a
:class:`DeadLetterSink`.  The PostgreSQL-backed sink lives in ``engine/db``; this module has the protocol plus a
logging sink and an in-memory one for tests.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from engine.broker.batching import DeleteBuffer
from engine.broker.envelope import safe_body
from engine.broker.ids import dlq_deduplication_id
from engine.broker.queues import ConsumedQueue
from engine.domain.pan import contains_pan

if TYPE_CHECKING:
    from engine.broker.envelope import Envelope

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


_REASON_ATTRIBUTE_MAX = 1024
_REDACTED_TEXT = "[redacted: held what looks like a card number]"


def scrub_text(text: str | None) -> str | None:
    """``text`` unless it holds what looks like a card number (an error message or traceback quoting its input),
    then a fixed placeholder."""
    if text is None:
        return None
    return _REDACTED_TEXT if contains_pan(text) else text


def format_traceback(exc: BaseException | None) -> str | None:
    """The traceback text of ``exc`` (``None`` when there is none)."""
    if exc is None:
        return None
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def reason_of(error: BaseException | None) -> BaseException | None:
    """The exception that explains a dead letter: ``error.reason`` when ``error`` carries one, else ``error``."""
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, BaseException) else error


class DeadLetters:
    """Records why messages were dead-lettered and moves them to their DLQ.  Shared by a broker's consumers.

    Parameters:
        sqs: the broker's boto3 SQS client.
        sink: where reason records go.
        deleter: the broker's delete buffer (a moved message's original is deleted through it).
    """

    def __init__(self, sqs: Any, sink: DeadLetterSink, deleter: DeleteBuffer) -> None:
        self.sqs = sqs
        self.sink = sink
        self.deleter = deleter

    def record(
        self,
        queue: ConsumedQueue,
        *,
        body: str,
        sqs_message_id: str,
        group_id: str | None,
        receive_count: int,
        envelope: Envelope | None,
        error: BaseException | None,
        source: DeadLetterSource,
    ) -> DeadLetterRecord:
        """Build the reason record and hand it to the sink (a sink failure is logged, never raised).  A body, error
        message or traceback that holds what looks like a card number is redacted first: no sink ever sees one.

        An error that carries its ``reason`` (another exception: the job's last failure when the engine
        dead-letters it after its attempts) is described by that reason; its ``attempts``, when it has them, are
        the engine's count of the job's failed attempts and replace SQS's receive count.
        """
        described = reason_of(error)
        record = DeadLetterRecord(
            queue=queue.sqs_name,
            message_id=sqs_message_id,
            job_id=envelope.job_id if envelope else None,
            kind=envelope.kind if envelope else None,
            group_id=group_id,
            stage=getattr(error, "stage", None) or getattr(described, "stage", None),
            attempts=int(getattr(error, "attempts", None) or receive_count),
            error_class=type(described).__name__ if described else "Unknown",
            error_message=scrub_text(str(described)) or "" if described else "",
            traceback=scrub_text(format_traceback(described)),
            body=safe_body(body),
            source=source,
            failed_at=datetime.now(UTC),
        )
        try:
            self.sink.record(record)
        except Exception:
            log.exception("dead-letter sink failed for message %s on %s", sqs_message_id, record.queue)
        return record

    def move(
        self,
        queue: ConsumedQueue,
        *,
        body: str,
        sqs_message_id: str,
        receipt_handle: str,
        group_id: str | None,
        receive_count: int,
        envelope: Envelope | None,
        error: BaseException | None,
        source: DeadLetterSource,
    ) -> bool:
        """Move one received message to the queue's DLQ at once: send, record the reason, delete the original.

        FIFO DLQ messages keep the group and use dedup id ``dlq:{message_id}``.  When the send fails nothing is
        deleted (the message comes back and SQS's own redrive takes over after maxReceiveCount).

        Returns:
            True when the message was moved.
        """
        described = reason_of(error)
        reason = scrub_text(f"{type(described).__name__}: {described}") or "" if described else source
        params: dict[str, Any] = {
            "QueueUrl": queue.dlq_url,
            "MessageBody": safe_body(body) if body else "<empty>",
            "MessageAttributes": {
                "dead_letter_source": {"DataType": "String", "StringValue": source},
                "dead_letter_reason": {"DataType": "String", "StringValue": reason[:_REASON_ATTRIBUTE_MAX]},
                "source_queue": {"DataType": "String", "StringValue": queue.sqs_name},
                # Its id on the work queue, where the reason row is recorded (FIFO: also the dedup id dlq:{id}).
                "source_message_id": {"DataType": "String", "StringValue": sqs_message_id},
            },
        }
        if queue.fifo:
            params["MessageGroupId"] = group_id or "dead-letter"
            params["MessageDeduplicationId"] = dlq_deduplication_id(sqs_message_id)
        try:
            self.sqs.send_message(**params)
        except Exception:
            log.exception("could not move message %s to %s's DLQ", sqs_message_id, queue.sqs_name)
            return False
        self.record(
            queue,
            body=body,
            sqs_message_id=sqs_message_id,
            group_id=group_id,
            receive_count=receive_count,
            envelope=envelope,
            error=error,
            source=source,
        )
        self.deleter.add(queue.url, receipt_handle)
        return True
