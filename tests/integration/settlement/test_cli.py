"""`payments settle upload|report` through the real click commands against this test's services."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from config.settings import get_settings
from tests.integration.settlement.conftest import csv_body

TS = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()


@pytest.fixture
def env(container, engine_settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    s = engine_settings
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", s.database.url.get_secret_value())
    monkeypatch.setenv("PAYMENTS_SQS_ENDPOINT_URL", s.sqs.endpoint_url)
    monkeypatch.setenv("PAYMENTS_S3_ENDPOINT_URL", s.s3.endpoint_url)
    monkeypatch.setenv("PAYMENTS_REDIS_URL", s.redis.url.get_secret_value() if s.redis.url else "")
    monkeypatch.setenv("PAYMENTS_REDIS_PREFIX", s.redis.prefix)
    monkeypatch.setenv("PAYMENTS_QUEUE_PREFIX", s.queue_prefix)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(s.data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_upload_then_report(env: None, tmp_path: Path, settle, terminal: str, container) -> None:  # type: ignore[no-untyped-def]
    batch = tmp_path / "batch.csv"
    batch.write_bytes(
        csv_body(
            [
                (terminal, "S1", TS, "sale", 1250, "EUR", "4242", "A1", ""),
                (terminal, "S2", TS, "sale", -5, "EUR", "4242", "A1", ""),
            ]
        )
    )
    runner = CliRunner()
    uploaded = runner.invoke(cli, ["settle", "upload", str(batch), "--json"])
    assert uploaded.exit_code == 0, uploaded.output
    job = json.loads(uploaded.output)
    assert job["kind"] == "settlement" and job["status"] == "accepted" and job["batch"]["bytes"] == batch.stat().st_size
    queue = container.sqs.get_queue_url(QueueName=f"{container.settings.queue_prefix}settlements.fifo")["QueueUrl"]
    [message] = container.sqs.receive_message(QueueUrl=queue, AttributeNames=["MessageGroupId"])["Messages"]
    assert json.loads(message["Body"])["job_id"] == job["id"] and message["Attributes"]["MessageGroupId"] == "cli"

    settle(job["id"])
    shown = runner.invoke(cli, ["settle", "report", job["id"], "--json"])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["counts"] == {"rows": 2, "accepted": 1, "rejected": 1, "duplicate": 0}
    assert report["rejects"] == [{"row": 2, "transaction_id": "S2", "reason": "invalid_amount"}]
    table = runner.invoke(cli, ["settle", "report", job["id"]])
    assert table.exit_code == 0 and "invalid_amount" in table.output and "TERMINAL_ID" in table.output
    assert runner.invoke(cli, ["settle", "report", "job_nope"]).exit_code == 1


def test_upload_with_a_card_number_exits_1_and_stores_nothing(env: None, tmp_path: Path, container, terminal) -> None:  # type: ignore[no-untyped-def]
    batch = tmp_path / "pan.csv"
    batch.write_bytes(csv_body([(terminal, "S1", TS, "sale", 100, "eur", "4242", "5555555555554444", "")]))
    result = CliRunner().invoke(cli, ["settle", "upload", str(batch)])
    assert result.exit_code == 1 and "card number" in result.output and "5555" not in result.output
    bucket = f"{container.settings.queue_prefix}{container.settings.s3.bucket_settlements}"
    assert container.s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_nothing_running_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "SQS_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(f"PAYMENTS_{name}", raising=False)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        batch = tmp_path / "b.csv"
        batch.write_bytes(csv_body([]))
        result = CliRunner().invoke(cli, ["settle", "upload", str(batch)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1 and "nothing is running" in result.output


def test_uploading_the_same_file_again_answers_the_first_job(env: None, tmp_path: Path, terminal: str) -> None:
    """A re-run after a timeout must not make a second job (issue 16): the default key is the file's SHA-256."""
    import hashlib

    batch = tmp_path / "again.csv"
    batch.write_bytes(csv_body([(terminal, "R1", TS, "sale", 700, "EUR", "4242", "A1", "")]))
    runner = CliRunner()
    first = runner.invoke(cli, ["settle", "upload", str(batch), "--json"])
    second = runner.invoke(cli, ["settle", "upload", str(batch), "--json"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert json.loads(second.output)["id"] == json.loads(first.output)["id"]
    other = tmp_path / "other.csv"
    other.write_bytes(csv_body([(terminal, "R2", TS, "sale", 700, "EUR", "4242", "A1", "")]))
    third = runner.invoke(cli, ["settle", "upload", str(other), "--json"])
    assert third.exit_code == 0 and json.loads(third.output)["id"] != json.loads(first.output)["id"]
    from cli.settle_cmd import default_key

    assert default_key(hashlib.sha256(batch.read_bytes()).hexdigest()).startswith("sha256:")
