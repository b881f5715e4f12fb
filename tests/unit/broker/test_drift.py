"""The drift check's rules on attribute maps as GetQueueAttributes answers them (no SQS needed)."""

from __future__ import annotations

import json

import pytest

from engine.broker.drift import Difference, compare, unsafe_queues
from pipelines.registry import CATALOGUE

PAYMENTS, NOTIFICATIONS = CATALOGUE[0], CATALOGUE[-1]
ARN = "arn:aws:sqs:eu-west-1:123456789012:"


def _healthy(spec=PAYMENTS, prefix: str = "p-") -> tuple[dict[str, str], dict[str, str]]:  # type: ignore[no-untyped-def]
    dlq = {"QueueArn": ARN + spec.dlq_name(prefix), "MessageRetentionPeriod": str(spec.dlq_retention)}
    queue = {
        "QueueArn": ARN + spec.name(prefix),
        "VisibilityTimeout": str(spec.visibility_timeout),
        "MessageRetentionPeriod": str(spec.retention),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": spec.max_receive_count}
        ),
        "SqsManagedSseEnabled": "true",
    }
    dlq["KmsMasterKeyId"] = "alias/payments"
    if spec.fifo:
        for attrs in (queue, dlq):
            attrs.update({"FifoQueue": "true", "ContentBasedDeduplication": "false"})
    return queue, dlq


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.base)
def test_queues_as_the_catalogue_says_have_no_difference(spec) -> None:  # type: ignore[no-untyped-def]
    assert compare(spec, "p-", *_healthy(spec)) == []


@pytest.mark.parametrize(
    ("change", "attribute", "unsafe"),
    [
        ({"VisibilityTimeout": "45"}, "VisibilityTimeout", False),
        ({"MessageRetentionPeriod": "86400"}, "MessageRetentionPeriod", False),
        ({"ContentBasedDeduplication": "true"}, "ContentBasedDeduplication", True),
        ({"RedrivePolicy": ""}, "RedrivePolicy", True),
        ({"RedrivePolicy": "not json"}, "RedrivePolicy", True),
        (
            {
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": ARN + "elsewhere", "maxReceiveCount": PAYMENTS.max_receive_count}
                )
            },
            "RedrivePolicy.deadLetterTargetArn",
            True,
        ),
        (
            {
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": ARN + "p-payments-dlq.fifo", "maxReceiveCount": "10"}
                )
            },
            "RedrivePolicy.maxReceiveCount",
            False,
        ),
        ({"SqsManagedSseEnabled": "false"}, "encryption", False),
        ({"FifoQueue": "false"}, "FifoQueue", True),
    ],
)
def test_each_difference_is_named_and_graded(change: dict[str, str], attribute: str, unsafe: bool) -> None:
    queue, dlq = _healthy()
    queue.update(change)
    (found,) = compare(PAYMENTS, "p-", queue, dlq)
    assert (found.queue, found.attribute, found.unsafe) == ("p-payments.fifo", attribute, unsafe)


def test_missing_queues_are_unsafe_and_the_dlq_is_checked_too() -> None:
    queue, dlq = _healthy()
    missing = compare(PAYMENTS, "p-", queue, None)
    assert [(d.queue, d.attribute, d.unsafe) for d in missing] == [("p-payments-dlq.fifo", "existence", True)]
    assert [d.attribute for d in compare(PAYMENTS, "p-", None, dlq)] == ["existence"]
    dlq.update({"MessageRetentionPeriod": "345600", "ContentBasedDeduplication": "true"})
    on_dlq = compare(PAYMENTS, "p-", queue, dlq)
    # A DLQ with content-based deduplication is drift, not unsafe: the engine sends it its own deduplication ids.
    assert {(d.attribute, d.unsafe) for d in on_dlq} == {
        ("ContentBasedDeduplication", False),
        ("MessageRetentionPeriod", False),
    }


def test_the_visibility_setting_is_what_is_expected() -> None:
    queue, dlq = _healthy()
    assert [d.attribute for d in compare(PAYMENTS, "p-", queue, dlq, visibility_timeout=30)] == ["VisibilityTimeout"]
    queue["VisibilityTimeout"] = "30"
    assert compare(PAYMENTS, "p-", queue, dlq, visibility_timeout=30) == []
    n_queue, n_dlq = _healthy(NOTIFICATIONS)
    assert compare(NOTIFICATIONS, "p-", n_queue, n_dlq, visibility_timeout=300) == []  # min(60, 300)


def test_describe_and_unsafe_queues() -> None:
    d = Difference("p-refunds.fifo", "VisibilityTimeout", "300", "45", False)
    assert d.describe() == "p-refunds.fifo: VisibilityTimeout is 45, expected 300"
    gone = Difference("p-refunds-dlq.fifo", "existence", "a dead-letter queue", None, True)
    assert gone.describe().endswith("is missing, expected a dead-letter queue (unsafe: the worker refuses this queue)")
    assert unsafe_queues([d, gone], "p-", CATALOGUE) == {"refunds"}
