"""The DLQ sweep never calls a message the engine moved itself "WorkerLost" (issue 16: `dlq ls` showed a poison
message redriven by SQS as WorkerLost while its real reason sat under its original message id)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from engine.db.dead_letters import SqlDeadLetterSink
from engine.db.tables import dead_letters
from engine.ops.dlq.entries import join
from engine.ops.dlq.messages import iter_specs, peek
from engine.ops.dlq.sweep import sweep
from engine.runtime.container import Container
from tests.integration.dlq.conftest import queue_url


def _moved_by_the_engine(c: Container, original: str, reason: str) -> None:
    """A DLQ message as the worker's dead-letter move sends it (engine/broker/dead_letters.py)."""
    c.sqs.send_message(
        QueueUrl=queue_url(c, "payments-dlq.fifo"),
        MessageBody="{not json",
        MessageGroupId="g-poison",
        MessageDeduplicationId=f"dlq:{original}",
        MessageAttributes={
            "dead_letter_source": {"DataType": "String", "StringValue": "poison"},
            "dead_letter_reason": {"DataType": "String", "StringValue": reason},
            "source_queue": {"DataType": "String", "StringValue": "payments.fifo"},
            "source_message_id": {"DataType": "String", "StringValue": original},
        },
    )


@pytest.fixture(autouse=True)
def _leave_the_dlq_as_found(payment_container: Container) -> Iterator[None]:
    """Other tests of this worker share the queues: take this test's DLQ messages out again."""
    yield
    c = payment_container
    url = queue_url(c, "payments-dlq.fifo")
    for _ in range(20):
        batch = c.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            break
        for m in batch:
            if m["Attributes"].get("MessageGroupId") == "g-poison":
                c.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            else:
                c.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)


def _rows(c: Container) -> list[sa.Row]:
    with c.db.connect() as conn:
        return list(
            conn.execute(sa.select(dead_letters.c.message_id, dead_letters.c.error_class, dead_letters.c.source))
        )


def test_a_moved_message_whose_worker_died_before_recording_gets_its_real_reason(payment_container: Container) -> None:
    c = payment_container
    original = f"orig-{uuid.uuid4().hex[:8]}"
    _moved_by_the_engine(c, original, "PoisonMessage: schema_invalid: body is not JSON")
    sink = SqlDeadLetterSink(c.db)
    before = {r.message_id for r in _rows(c)}
    assert sweep(c.sqs, c.db, sink, c.settings.queue_prefix) >= 1
    [row] = [r for r in _rows(c) if r.message_id == original]
    assert (row.error_class, row.source) == ("PoisonMessage", "poison")
    new = {r.message_id for r in _rows(c)} - before
    assert new == {original}  # no WorkerLost row under the DLQ copy's own id
    sweep(c.sqs, c.db, sink, c.settings.queue_prefix)
    assert {r.message_id for r in _rows(c)} - before == {original}  # known now, under its original id
    # `payments dlq ls` joins the message with that row: the operator sees the real reason.
    messages = peek(c.sqs, c.settings.queue_prefix, list(iter_specs("payments", c.settings.queue_prefix)))
    with c.db.connect() as conn:
        [entry] = [e for e in join(conn, messages) if e.message.original_message_id == original]
    assert entry.reason is not None and entry.reason["error_class"] == "PoisonMessage"


def test_a_moved_message_the_worker_recorded_is_left_alone(payment_container: Container) -> None:
    c = payment_container
    original = f"orig-{uuid.uuid4().hex[:8]}"
    _moved_by_the_engine(c, original, "PoisonMessage: schema_invalid: missing job_id")
    sink = SqlDeadLetterSink(c.db)
    from datetime import UTC, datetime

    from engine.broker.dead_letters import DeadLetterRecord

    sink.record(
        DeadLetterRecord(
            queue=f"{c.settings.queue_prefix}payments.fifo", message_id=original, job_id=None, kind=None,
            group_id="g-poison", stage=None, attempts=1, error_class="PoisonMessage",
            error_message="schema_invalid: missing job_id", traceback=None, body="{not json", source="poison",
            failed_at=datetime.now(UTC),
        )
    )  # fmt: skip
    before = {r.message_id for r in _rows(c)}
    sweep(c.sqs, c.db, sink, c.settings.queue_prefix)
    assert {r.message_id for r in _rows(c)} == before  # nothing recorded for it: the worker's row stands
