"""``payments report oss|revenue|settlement|show`` through click against this test's services."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from config.settings import get_settings
from engine.runtime.container import Container
from tests.integration.refunds.helpers import queued
from tests.integration.reports.test_oss_return import book_scenario

pytestmark = pytest.mark.integration


@pytest.fixture
def env(report_container: Container, monkeypatch: pytest.MonkeyPatch) -> Iterator[Container]:
    s = report_container.settings
    assert s.database.url is not None
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", s.database.url.get_secret_value())
    monkeypatch.setenv("PAYMENTS_SQS_ENDPOINT_URL", s.sqs.endpoint_url)
    monkeypatch.setenv("PAYMENTS_S3_ENDPOINT_URL", s.s3.endpoint_url)
    monkeypatch.setenv("PAYMENTS_REDIS_URL", s.redis.url.get_secret_value() if s.redis.url else "")
    monkeypatch.setenv("PAYMENTS_REDIS_PREFIX", s.redis.prefix)
    monkeypatch.setenv("PAYMENTS_QUEUE_PREFIX", s.queue_prefix)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(s.data_dir))
    get_settings.cache_clear()
    yield report_container
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["report", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_oss_accepts_a_job_and_wait_prints_its_files(env: Container) -> None:
    c = env
    book_scenario(c.db)
    code, out, _ = invoke("oss", "2024-Q2", "--json")
    assert code == 0, out
    accepted = json.loads(out)
    assert accepted["kind"] == "report" and accepted["report"] == {"type": "oss_return", "period": "2024-Q2"}
    [envelope] = queued(c, "reports")
    assert envelope["job_id"] == accepted["id"] and envelope["group_id"] == "reports:cli"
    c.run_job("report", envelope)

    code, out, _ = invoke("show", accepted["id"])
    assert code == 0, out
    assert "succeeded" in out and "VAT due: 133.86 EUR" in out and "agrees with the ledger" in out
    assert "oss-return.pdf" in out and "SE" in out

    # --wait: the command waits while a worker (here: this thread) runs the job.
    def work() -> None:
        for envelope in queued(c, "reports", wait=20):
            c.run_job("report", envelope)

    worker = threading.Thread(target=work)
    worker.start()
    code, out, _ = invoke("revenue", "2024-06", "--currency", "eur", "--wait", "--json")
    worker.join(30)
    assert code == 0, out
    done: dict[str, Any] = json.loads(out)
    assert done["status"] == "succeeded" and done["report"]["currency"] == "eur"
    assert [f["name"] for f in done["report"]["files"]] == ["revenue.json", "revenue.csv"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("oss", "2024-13"), "period"),
        (("oss", "2024-06"), "period"),
        (("oss", "2099-Q1"), "period_not_started"),
        (("revenue", "2024-06", "--currency", "XYZ"), "currency"),
        (("settlement", "2024-02-30"), "date"),
    ],
)
def test_bad_input_exits_2_naming_the_field_and_accepts_nothing(
    env: Container, args: tuple[str, ...], says: str
) -> None:
    code, _, err = invoke(*args)
    assert code == 2 and says in err
    assert queued(env, "reports") == []


def test_show_refuses_what_is_not_a_report_job(env: Container) -> None:
    code, _, err = invoke("show", "job_nope")
    assert code == 1 and "no report job job_nope" in err
