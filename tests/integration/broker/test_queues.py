"""Provisioning: attributes read back with boto3, idempotency, drift repair."""

from __future__ import annotations

import json
from typing import Any

from engine.broker.queues import MAX_RECEIVE_COUNT, provision, queue_depths
from pipelines.registry import CATALOGUE


def _attrs(sqs: Any, name: str) -> dict[str, str]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_every_catalogue_queue_has_its_documented_attributes(sqs: Any, queue_prefix: str) -> None:
    first = provision(sqs, queue_prefix, CATALOGUE)
    assert all(p.created and p.dlq_created for p in first)
    for spec in CATALOGUE:
        attrs = _attrs(sqs, spec.name(queue_prefix))
        dlq = _attrs(sqs, spec.dlq_name(queue_prefix))
        policy = json.loads(attrs["RedrivePolicy"])
        assert int(policy["maxReceiveCount"]) == MAX_RECEIVE_COUNT == 20  # a safety net: the engine counts attempts
        assert policy["deadLetterTargetArn"] == dlq["QueueArn"]
        if spec.fifo:
            assert attrs["FifoQueue"] == "true" and dlq["FifoQueue"] == "true"
            assert dlq["QueueArn"].endswith(f"{queue_prefix}{spec.base}-dlq.fifo")
            assert attrs["VisibilityTimeout"] == "300"
            assert attrs["MessageRetentionPeriod"] == "1209600"
        else:
            assert attrs.get("FifoQueue", "false") == "false"
            assert spec.name(queue_prefix) == f"{queue_prefix}notifications"
            assert attrs["VisibilityTimeout"] == "60"
            assert attrs["MessageRetentionPeriod"] == "345600"


def test_provision_is_idempotent_and_repairs_drift(sqs: Any, queue_prefix: str) -> None:
    provision(sqs, queue_prefix, CATALOGUE)
    url = sqs.get_queue_url(QueueName=f"{queue_prefix}payments.fifo")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7"})
    again = provision(sqs, queue_prefix, CATALOGUE)
    assert not any(p.created or p.dlq_created for p in again)
    assert [p.name for p in again if p.updated] == [f"{queue_prefix}payments.fifo"]
    assert _attrs(sqs, f"{queue_prefix}payments.fifo")["VisibilityTimeout"] == "300"
    names = [q for q in sqs.list_queues(QueueNamePrefix=queue_prefix).get("QueueUrls", [])]
    assert len(names) == 2 * len(CATALOGUE)


def test_provision_honours_the_visibility_setting_and_goes_back_to_the_default(sqs: Any, queue_prefix: str) -> None:
    provision(sqs, queue_prefix, CATALOGUE, visibility_timeout=5)
    for spec in CATALOGUE:
        assert _attrs(sqs, spec.name(queue_prefix))["VisibilityTimeout"] == "5"
    # The setting back at its default (300) restores the catalogue's timeouts on the existing queues.
    again = provision(sqs, queue_prefix, CATALOGUE, visibility_timeout=300)
    assert all(p.updated for p in again)
    for spec in CATALOGUE:
        assert _attrs(sqs, spec.name(queue_prefix))["VisibilityTimeout"] == ("300" if spec.fifo else "60")


def test_queue_depths_reports_each_queue_and_missing_ones(sqs: Any, queue_prefix: str) -> None:
    rows = queue_depths(sqs, queue_prefix, CATALOGUE)
    assert all(r["visible"] is None for r in rows)
    provision(sqs, queue_prefix, CATALOGUE)
    url = sqs.get_queue_url(QueueName=f"{queue_prefix}notifications")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    by_name = {r["name"]: r for r in queue_depths(sqs, queue_prefix, CATALOGUE)}
    row = by_name[f"{queue_prefix}notifications"]
    assert row == {
        "name": f"{queue_prefix}notifications",
        "type": "standard",
        "visible": 1,
        "in_flight": 0,
        "delayed": 0,
        "dlq": {"name": f"{queue_prefix}notifications-dlq", "visible": 0},
    }
    assert by_name[f"{queue_prefix}payments.fifo"]["type"] == "fifo"
