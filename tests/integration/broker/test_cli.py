"""`payments queues create|ls` against the local endpoint, through the real click commands."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from cli.main import cli
from config.settings import get_settings


@pytest.fixture
def env(local_aws_url: str, queue_prefix: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PAYMENTS_SQS_ENDPOINT_URL", local_aws_url)
    monkeypatch.setenv("PAYMENTS_QUEUE_PREFIX", queue_prefix)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_queues_create_then_ls_json(env: None, queue_prefix: str) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["queues", "create"])
    assert first.exit_code == 0, first.output
    assert first.output.count("created") == 7
    again = runner.invoke(cli, ["queues", "create", "--json"])
    assert {row["status"] for row in json.loads(again.output)} == {"exists"}
    listed = runner.invoke(cli, ["queues", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [r["name"] for r in rows] == [
        f"{queue_prefix}{n}"
        for n in (
            "payments.fifo",
            "refunds.fifo",
            "subscriptions.fifo",
            "settlements.fifo",
            "webhooks.fifo",
            "reports.fifo",
        )
    ] + [f"{queue_prefix}notifications"]
    assert rows[0]["dlq"] == {"name": f"{queue_prefix}payments-dlq.fifo", "visible": 0}
    assert set(rows[0]) == {"name", "type", "visible", "in_flight", "delayed", "dlq"}
    table = runner.invoke(cli, ["queues", "ls"])
    assert "payments.fifo" in table.output and "DLQ_VISIBLE" in table.output


def test_queues_create_honours_the_visibility_setting(
    env: None, queue_prefix: str, local_aws_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("PAYMENTS_SQS_VISIBILITY_TIMEOUT_SECONDS", "7")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["queues", "create"])
    assert result.exit_code == 0, result.output
    sqs = boto3.client(
        "sqs", endpoint_url=local_aws_url, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    for name in ("payments.fifo", "notifications"):
        url = sqs.get_queue_url(QueueName=f"{queue_prefix}{name}")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "7"


def test_queues_ls_without_anything_running_exits_1(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PAYMENTS_SQS_ENDPOINT_URL", "PAYMENTS_AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["queues", "ls"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "nothing is running" in result.output
