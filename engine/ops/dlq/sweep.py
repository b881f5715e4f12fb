"""The periodic DLQ sweep: a reason row for every dead-lettered message, even when no worker wrote one.

The worker records why a message died when its last allowed receive fails.  A worker killed during that receive
writes nothing, and SQS redrives the message anyway; the sweep finds such messages in each DLQ and records them
as ``WorkerLost``, marking their jobs ``dead_lettered``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.broker.dead_letters import DeadLetterRecord, DeadLetterSink
from engine.broker.envelope import job_fields
from engine.broker.queues import QueueSpec
from engine.db.tables import dead_letters
from pipelines.registry import CATALOGUE

log = logging.getLogger(__name__)

#: Long enough to page through a DLQ without seeing the same messages again, short enough for operators.
PEEK_VISIBILITY_SECONDS = 30
MAX_MESSAGES_PER_QUEUE = 1000


def sweep(
    sqs: Any,
    db: sa.Engine,
    sink: DeadLetterSink,
    prefix: str = "",
    specs: Iterable[QueueSpec] = CATALOGUE,
    now: datetime | None = None,
) -> int:
    """Record every DLQ message that has no reason row yet; return how many were recorded.

    Messages are only peeked (received with a short visibility, then made visible again): the sweep never
    deletes or moves anything.  Raises :class:`botocore.exceptions.ClientError` or
    :class:`sqlalchemy.exc.SQLAlchemyError` when a dependency is down.
    """
    recorded = 0
    for spec in specs:
        try:
            dlq_url = sqs.get_queue_url(QueueName=spec.dlq_name(prefix))["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            continue
        messages = _peek_all(sqs, dlq_url)
        if not messages:
            continue
        ids = [m["MessageId"] for m in messages] + [o for m in messages if (o := original_message_id(m))]
        with db.connect() as conn:
            known = set(
                conn.execute(sa.select(dead_letters.c.message_id).where(dead_letters.c.message_id.in_(ids))).scalars()
            )
        for m in messages:
            original = original_message_id(m)
            if m["MessageId"] in known or (original is not None and original in known):
                continue  # the worker recorded it (under the id it had on its work queue when the engine moved it)
            sink.record(_record_for(spec.name(prefix), m, now or datetime.now(UTC)))
            recorded += 1
        _release(sqs, dlq_url, messages)
    return recorded


def _peek_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < MAX_MESSAGES_PER_QUEUE:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        for m in fresh:
            seen[m["MessageId"]] = m
    return list(seen.values())


def _release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)
        ]
        try:
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:  # they become visible again on their own after PEEK_VISIBILITY_SECONDS
            log.warning("could not release peeked DLQ messages: %s", exc)


def original_message_id(message: dict[str, Any]) -> str | None:
    """The MessageId a DLQ message had on its work queue when the engine itself moved it (poison, explicit dead
    letter): FIFO DLQ messages carry dedup id ``dlq:{message_id}``, standard ones the ``source_message_id``
    attribute.  ``None`` for a message SQS redrove (it keeps its MessageId)."""
    dedup = message.get("Attributes", {}).get("MessageDeduplicationId") or ""
    if dedup.startswith("dlq:"):
        return str(dedup[4:])
    attribute = message.get("MessageAttributes", {}).get("source_message_id", {})
    value = attribute.get("StringValue")
    return str(value) if value else None


def _engine_reason(message: dict[str, Any]) -> tuple[str, str, str] | None:
    """(error class, message, source) from the attributes the engine puts on a message it moves, else ``None``."""
    attributes = message.get("MessageAttributes", {})
    source = attributes.get("dead_letter_source", {}).get("StringValue")
    if not source:
        return None
    reason = attributes.get("dead_letter_reason", {}).get("StringValue") or source
    error_class, sep, text = reason.partition(": ")
    return (error_class, text, source) if sep else (source, reason, source)


def _record_for(queue: str, message: dict[str, Any], now: datetime) -> DeadLetterRecord:
    """The reason row of a DLQ message nobody recorded: the engine's own reason when it moved the message (the
    worker died between the move and its record) under the id it had on its work queue, else ``WorkerLost``."""
    body = message.get("Body", "")
    fields = job_fields(body)
    attrs = message.get("Attributes", {})
    moved = _engine_reason(message)
    original = original_message_id(message)
    if moved is not None and original is not None:
        error_class, error_message, source = moved
        return DeadLetterRecord(
            queue=queue,
            message_id=original,
            job_id=fields.get("job_id"),
            kind=fields.get("kind"),
            group_id=attrs.get("MessageGroupId") or fields.get("group_id"),
            stage=None,
            attempts=int(attrs.get("ApproximateReceiveCount", 0) or 0),
            error_class=error_class,
            error_message=error_message,
            traceback=None,
            body=body,
            source=source,  # type: ignore[arg-type]
            failed_at=now,
        )
    return DeadLetterRecord(
        queue=queue,
        message_id=message["MessageId"],
        job_id=fields.get("job_id"),
        kind=fields.get("kind"),
        group_id=attrs.get("MessageGroupId") or fields.get("group_id"),
        stage=None,
        attempts=int(attrs.get("ApproximateReceiveCount", 0) or 0),
        error_class="WorkerLost",
        error_message="dead-lettered by SQS redrive with no failure recorded (the worker died on its last receive)",
        traceback=None,
        body=body,
        source="redrive",
        failed_at=now,
    )
