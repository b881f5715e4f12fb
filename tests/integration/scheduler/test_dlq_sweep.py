"""The DLQ sweep records a reason for dead-lettered messages no worker explained, exactly once."""

from __future__ import annotations

import json

import sqlalchemy as sa

from engine.broker.ids import deduplication_id
from engine.db.tables import dead_letters, jobs
from engine.ops.scheduler import run_once


def _dlq_url(container, base: str = "payments") -> str:  # type: ignore[no-untyped-def]
    name = f"{container.settings.queue_prefix}{base}-dlq.fifo"
    return str(container.sqs.get_queue_url(QueueName=name)["QueueUrl"])


def test_sweep_records_unexplained_dead_letters_once(container) -> None:  # type: ignore[no-untyped-def]
    job_id = f"job_sweep_{container.settings.queue_prefix}"
    with container.db.begin() as conn:
        conn.execute(
            jobs.insert().values(
                id=job_id,
                kind="payment",
                status="processing",
                idempotency_scope=f"scope-{job_id}",
                queue="payments.fifo",
                group_id="cus_sweep",
                request={},
            )
        )
    body = json.dumps({"version": 1, "job_id": job_id, "kind": "payment", "group_id": "cus_sweep"})
    sent = container.sqs.send_message(
        QueueUrl=_dlq_url(container),
        MessageBody=body,
        MessageGroupId="cus_sweep",
        MessageDeduplicationId=deduplication_id(f"scope-{job_id}"),
    )
    # A message that already has a reason row must not get a second one.
    explained = container.sqs.send_message(
        QueueUrl=_dlq_url(container, "refunds"),
        MessageBody="not json at all",
        MessageGroupId="cus_other",
        MessageDeduplicationId="explained-1",
    )
    with container.db.begin() as conn:
        conn.execute(
            dead_letters.insert().values(
                queue=f"{container.settings.queue_prefix}refunds.fifo",
                message_id=explained["MessageId"],
                error_class="PoisonMessage",
                error_message="undecodable",
                body="not json at all",
                source="poison",
                first_failed_at=sa.func.now(),
                last_failed_at=sa.func.now(),
            )
        )

    first = run_once(container)
    assert first["dlq-sweep"].startswith("1 ")
    second = run_once(container)
    assert second["dlq-sweep"].startswith("0 ")

    with container.db.connect() as conn:
        rows = conn.execute(sa.select(dead_letters).order_by(dead_letters.c.id)).mappings().all()
        job = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().one()
    swept = [r for r in rows if r["message_id"] == sent["MessageId"]]
    assert len(swept) == 1
    assert swept[0]["job_id"] == job_id and swept[0]["error_class"] == "WorkerLost"
    assert swept[0]["source"] == "redrive" and swept[0]["group_id"] == "cus_sweep"
    assert job["status"] == "dead_lettered"
    # The sweep only peeks: both messages are still in their DLQs, visible again.
    attrs = container.sqs.get_queue_attributes(
        QueueUrl=_dlq_url(container), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"


def test_queue_gauges_report_depth_per_queue(container) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import REGISTRY

    url = container.sqs.get_queue_url(QueueName=f"{container.settings.queue_prefix}notifications")["QueueUrl"]
    container.sqs.send_message(QueueUrl=url, MessageBody="{}")
    report = run_once(container)
    assert report["queue-gauges"].startswith(f"{len(container.queues)} queues measured")
    name = f"{container.settings.queue_prefix}notifications"
    assert REGISTRY.get_sample_value("payments_queue_messages", {"queue": name, "state": "visible"}) == 1.0
