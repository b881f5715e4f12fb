"""Reading dead-letter queues without taking their messages.

A DLQ message is *peeked*: received with a short visibility timeout, then made visible again.  On a FIFO DLQ a
receive never returns a message of a group whose earlier message is still held, so what one pass sees is every
group's head and as many followers as the receives brought; that is all SQS lets a reader see without deleting.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.broker.batching import chunks
from engine.broker.queues import QueueSpec
from pipelines.registry import CATALOGUE

log = logging.getLogger(__name__)

#: Visibility of a peeked message: long enough to page through a DLQ, short enough that a reader that dies
#: holding messages gives them back soon.
PEEK_VISIBILITY_SECONDS = 10
MAX_MESSAGES_PER_QUEUE = 1000


@dataclass(frozen=True)
class DlqMessage:
    """One message as received from a DLQ."""

    spec: QueueSpec
    dlq_name: str
    dlq_url: str
    message_id: str
    receipt_handle: str
    body: str
    group_id: str | None
    dedup_id: str | None
    sent_at: datetime | None
    receive_count: int
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def original_message_id(self) -> str | None:
        """The MessageId the message had on its work queue when the engine itself moved it (poison, explicit):
        those carry dedup id ``dlq:{message_id}``.  ``None`` for SQS redrive (which keeps the MessageId)."""
        if self.dedup_id and self.dedup_id.startswith("dlq:"):
            return self.dedup_id[4:]
        return None

    def archived_attributes(self) -> dict[str, Any]:
        """System and message attributes as plain JSON (for the archive)."""
        return dict(self.attributes)


def dlq_url(sqs: Any, spec: QueueSpec, prefix: str) -> str | None:
    """The URL of ``spec``'s DLQ, or ``None`` when it does not exist."""
    try:
        return str(sqs.get_queue_url(QueueName=spec.dlq_name(prefix))["QueueUrl"])
    except sqs.exceptions.QueueDoesNotExist:
        return None


def receive(sqs: Any, spec: QueueSpec, prefix: str, url: str, visibility: int, count: int = 10) -> list[DlqMessage]:
    """One ReceiveMessage on a DLQ (no long poll), decoded.

    Raises:
        botocore.exceptions.ClientError: SQS refused the call.
    """
    answer = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=count,
        WaitTimeSeconds=0,
        VisibilityTimeout=visibility,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return [_decode(spec, prefix, url, raw) for raw in answer.get("Messages", [])]


def peek(
    sqs: Any,
    prefix: str = "",
    specs: Iterable[QueueSpec] = CATALOGUE,
    *,
    visibility: int = PEEK_VISIBILITY_SECONDS,
    limit: int = MAX_MESSAGES_PER_QUEUE,
) -> list[DlqMessage]:
    """Every message of the DLQs of ``specs`` that a pass of receives can see, released again at the end.

    Nothing is deleted or moved.  Raises :class:`botocore.exceptions.ClientError` when SQS refuses a receive.
    """
    found: list[DlqMessage] = []
    for spec in specs:
        url = dlq_url(sqs, spec, prefix)
        if url is None:
            continue
        seen: dict[str, DlqMessage] = {}
        try:
            while len(seen) < limit:
                fresh = [m for m in receive(sqs, spec, prefix, url, visibility) if m.message_id not in seen]
                if not fresh:
                    break
                for m in fresh:
                    seen[m.message_id] = m
        finally:
            release(sqs, url, seen.values())
        found.extend(seen.values())
    return found


def release(sqs: Any, url: str, messages: Iterable[DlqMessage]) -> None:
    """Make held messages visible again at once.  Failures are logged: the messages come back on their own when
    their visibility runs out (moto refuses visibility changes on messages sent more than 12 h ago)."""
    for chunk in chunks(list(messages)):
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0} for i, m in enumerate(chunk)
        ]
        try:
            answer = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:  # they become visible again after their visibility timeout
            log.warning("could not release DLQ messages on %s: %s", url, exc)
            continue
        for failed in answer.get("Failed", []):
            log.warning("could not release a DLQ message on %s: %s", url, failed.get("Message"))


def delete(sqs: Any, message: DlqMessage) -> None:
    """Delete one DLQ message by its receipt handle.

    Raises:
        botocore.exceptions.ClientError: SQS refused (e.g. the receipt handle went stale: the message was
            received again meanwhile and is still in the DLQ).
    """
    sqs.delete_message(QueueUrl=message.dlq_url, ReceiptHandle=message.receipt_handle)


def iter_specs(queue: str | None, prefix: str = "") -> Iterator[QueueSpec]:
    """The catalogue specs a ``--queue`` option selects (all when ``None``).

    Raises:
        KeyError: ``queue`` is not a catalogue queue or DLQ name.
    """
    if queue is None:
        yield from CATALOGUE
        return
    yield CATALOGUE.resolve(queue, prefix).spec


def _decode(spec: QueueSpec, prefix: str, url: str, raw: dict[str, Any]) -> DlqMessage:
    attrs = raw.get("Attributes", {})
    sent = attrs.get("SentTimestamp")
    message_attrs = {k: v.get("StringValue") for k, v in (raw.get("MessageAttributes") or {}).items()}
    return DlqMessage(
        spec=spec,
        dlq_name=spec.dlq_name(prefix),
        dlq_url=url,
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        group_id=attrs.get("MessageGroupId"),
        dedup_id=attrs.get("MessageDeduplicationId"),
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        receive_count=int(attrs.get("ApproximateReceiveCount", 0) or 0),
        attributes={**attrs, **{f"message:{k}": v for k, v in message_attrs.items()}},
    )
