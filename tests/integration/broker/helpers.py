"""Small helpers shared by broker integration tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import dramatiq

from engine.broker.envelope import Envelope, to_message


def envelope(group: str = "cus_1", *, scope: str | None = None, kind: str = "payment", **data: Any) -> Envelope:
    """A payment envelope with a unique idempotency scope unless ``scope`` is given."""
    return Envelope.new(
        kind=kind,
        data=dict(data),
        idempotency_scope=scope or f"test:{uuid.uuid4()}",
        group_id=group,
        job_id=f"job_{uuid.uuid4().hex[:12]}",
    )


def message(env: Envelope, queue: str = "payments", **options: Any) -> dramatiq.Message[Any]:
    return to_message(env, queue, options)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) of a queue."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def drain(sqs: Any, url: str, wait: int = 0) -> list[dict[str, Any]]:
    """Receive everything visible in a queue (attributes included), without deleting."""
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            VisibilityTimeout=60,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            return out
        out.extend(got)
