"""Report jobs end to end on the real services: ``POST /v1/reports`` → ``reports.fifo`` → the report pipeline
(generate → tidy → notify) → files in the reports bucket (the local S3 endpoint), linked from the job.

The S3 writes are the external effect; two tests stop at the exact instants that matter: a worker dying between
its S3 writes and the checkpoint (the redelivery links one complete set, and the dead run's set is removed), and
two copies of the job racing (one set linked, the other deleted, never a partial or mixed set linked).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.db import jobs as job_repo
from engine.db.tables import outbox
from engine.jobs.job import Job
from engine.jobs.pipeline import Pipeline, PipelineRunner
from engine.reports.store import reports_bucket
from engine.runtime import metrics
from engine.runtime.container import Container
from pipelines.report.generate import GenerateStage, Superseded
from pipelines.report.kind import KIND
from tests.integration.refunds.helpers import queued
from tests.integration.reports.conftest import book_at, import_real_rates
from tests.integration.reports.test_oss_return import at, book_scenario, sale

pytestmark = pytest.mark.integration

OSS_FILES = ["oss-return-transactions.csv", "oss-return.csv", "oss-return.json", "oss-return.pdf"]
#: The Q2 2024 return of the scenario in test_oss_return.py (worked by hand there): VAT due in euro cents.
Q2_VAT_DUE = 800 + 1_050 + 1_900 + 1_000 + 550 + 2_700 + 2_674 + 2_712


@pytest.fixture
def api(report_container: Container) -> TestClient:
    from engine.ingest.app import create_app

    return TestClient(create_app(report_container))


def headers(c: Container, role: str = "operator", sub: str = "finance", key: str | None = None) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {mint(c.settings, role, sub=sub, ttl_seconds=600)}",
        "Idempotency-Key": key or uuid.uuid4().hex,
    }


def ask(api: TestClient, c: Container, body: dict[str, Any], **kw: Any) -> Any:
    return api.post("/v1/reports", json=body, headers=headers(c, **kw))


def runner(c: Container, on_stored: Callable[[str], None] | None = None) -> PipelineRunner:
    """The report pipeline as the worker builds it, with the test hook of stage ``generate``."""
    stages = tuple(c.build(f, on_stored=on_stored) if f is GenerateStage else c.build(f) for f in KIND.stages)
    return PipelineRunner(c.db, Pipeline("report", stages))


def objects(c: Container) -> list[str]:
    bucket = reports_bucket(c.settings)
    return sorted(o["Key"] for o in c.s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def unfinished_uploads(c: Container) -> list[str]:
    return [u["Key"] for u in c.s3.list_multipart_uploads(Bucket=reports_bucket(c.settings)).get("Uploads", [])]


def load(c: Container, job_id: str) -> Job:
    with c.db.connect() as conn:
        return job_repo.get(conn, job_id)


def read_json(c: Container, url: str) -> Any:
    bucket, key = url.removeprefix("s3://").split("/", 1)
    return json.loads(c.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def events(c: Container, job_id: str) -> list[str]:
    with c.db.connect() as conn:
        return list(conn.execute(sa.select(outbox.c.event_type).where(outbox.c.job_id == job_id)).scalars())


def linked_keys(job: Job) -> list[str]:
    bucket_prefix = f"s3://{job.public['report']['location'].removeprefix('s3://').split('/', 1)[0]}/"
    return sorted(f["url"].removeprefix(bucket_prefix) for f in job.public["report"]["files"])


def sample(name: str, labels: dict[str, str]) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_oss_return_job_links_its_files_and_shows_the_vat_due(api: TestClient, report_container: Container) -> None:
    c = report_container
    book_scenario(c.db)
    seconds_before = sample("payments_report_duration_seconds_count", {"type": "oss_return", "outcome": "succeeded"})
    rows_before = sample("payments_report_rows_total", {"type": "oss_return"})

    answer = ask(api, c, {"type": "oss_return", "period": "2024-q2"})
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["kind"] == "report" and accepted["status"] == "accepted"
    assert accepted["report"] == {"type": "oss_return", "period": "2024-Q2"}
    [envelope] = queued(c, "reports")
    assert envelope["job_id"] == accepted["id"] and envelope["group_id"] == "reports:finance"

    done = c.run_job("report", envelope)
    assert done.status == "succeeded", done.error
    view = api.get(f"/v1/jobs/{done.id}", headers=headers(c, role="viewer")).json()
    report = view["report"]
    assert view["stage"] == "notify" and report["preliminary"] is False and report["agrees_with_ledger"] is True
    assert report["total_vat_eur"] == Q2_VAT_DUE
    assert {r["country"]: r["total_vat_eur"] for r in report["by_country"]}["SE"] == 2_712
    location = report["location"]
    assert location.startswith(f"s3://{reports_bucket(c.settings)}/reports/oss_return/2024-Q2/{done.id}/")
    assert [f["name"] for f in report["files"]] == [
        "oss-return.json", "oss-return-transactions.csv", "oss-return.csv", "oss-return.pdf",
    ]  # fmt: skip
    assert all(f["url"] == location + f["name"] for f in report["files"])
    # The bucket holds exactly the linked set, and its JSON is the return the job shows.
    assert objects(c) == linked_keys(done) and len(objects(c)) == 4
    stored = read_json(c, location + "oss-return.json")
    assert stored["total_vat_eur"] == Q2_VAT_DUE and stored["agrees_with_ledger"] is True
    assert events(c, done.id) == ["job.succeeded"]
    # Metrics: one more report timed, its rows counted.
    assert (
        sample("payments_report_duration_seconds_count", {"type": "oss_return", "outcome": "succeeded"})
        == seconds_before + 1
    )
    written = sum(f["rows"] or 0 for f in report["files"])
    assert written > 0 and sample("payments_report_rows_total", {"type": "oss_return"}) == rows_before + written


def test_revenue_and_settlement_jobs(api: TestClient, report_container: Container) -> None:
    c = report_container
    book_scenario(c.db)
    revenue = ask(api, c, {"type": "revenue", "period": "2024-06", "currency": "EUR"}, role="viewer").json()
    settlement = ask(api, c, {"type": "settlement", "date": "2024-06-20"}, role="admin").json()
    assert revenue["report"] == {"type": "revenue", "period": "2024-06", "currency": "eur"}
    assert settlement["report"] == {"type": "settlement", "date": "2024-06-20"}
    for envelope in queued(c, "reports"):
        assert c.run_job("report", envelope).status == "succeeded"
    rev = load(c, revenue["id"]).public["report"]
    assert [f["name"] for f in rev["files"]] == ["revenue.json", "revenue.csv"] and rev["agrees_with_ledger"]
    assert set(rev["totals"]) == {"eur"}
    june = read_json(c, rev["location"] + "revenue.json")
    assert june["totals"]["eur"] == rev["totals"]["eur"] and june["currency"] == "eur"
    pos = load(c, settlement["id"]).public["report"]
    assert [f["name"] for f in pos["files"]] == ["settlement.json", "settlement.csv"] and pos["agrees_with_ledger"]
    assert [(r["clearing"], r["currency"], r["agrees"]) for r in pos["clearing"]] == [("pos:T1", "eur", True)]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"type": "vat_return", "period": "2024-Q2"}, "report_type_unknown", "type"),
        ({"type": "oss_return", "period": "2024-13"}, "period_invalid", "period"),
        ({"type": "oss_return", "period": "Q2 2024"}, "period_invalid", "period"),
        ({"type": "oss_return", "period": "2024-06"}, "period_invalid", "period"),  # a month: the return is quarterly
        ({"type": "oss_return"}, "period_invalid", "period"),
        ({"type": "oss_return", "period": "2099-Q1"}, "period_not_started", "period"),
        ({"type": "settlement", "date": "2024-02-30"}, "period_invalid", "date"),
        ({"type": "settlement", "period": "2024-06"}, "field_not_allowed", "period"),
        ({"type": "revenue", "period": "2024-06", "currency": "XYZ"}, "currency_invalid", "currency"),
        ({"type": "oss_return", "period": "2024-Q2", "currency": "EUR"}, "field_not_allowed", "currency"),
        ({"type": "oss_return", "period": "2024-Q2", "format": "pdf"}, "validation_error", "format"),
        ({"type": "oss_return", "period": 2024}, "validation_error", "period"),
    ],
)
def test_bad_requests_are_422_naming_the_field_and_accept_nothing(
    api: TestClient, report_container: Container, body: dict[str, Any], code: str, param: str
) -> None:
    c = report_container
    answer = ask(api, c, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code and answer.json()["error"]["param"] == param
    assert queued(c, "reports") == []
    with c.db.connect() as conn:
        assert job_repo.page(conn, kind="report")[0] == []


def test_roles_and_idempotency(api: TestClient, report_container: Container) -> None:
    c = report_container
    body = {"type": "oss_return", "period": "2024-Q2"}
    assert api.post("/v1/reports", json=body).status_code == 401
    assert ask(api, c, body, role="support").json()["error"]["code"] == "forbidden"
    key = uuid.uuid4().hex
    first = ask(api, c, body, role="viewer", key=key)
    assert first.status_code == 202
    assert ask(api, c, body, role="viewer", key=key).json() == first.json()  # the saved answer
    other = ask(api, c, {"type": "oss_return", "period": "2024-Q1"}, role="viewer", key=key)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert len(queued(c, "reports")) == 1


def test_a_missing_rate_fails_the_job_with_rate_missing_and_stores_nothing(
    api: TestClient, report_container: Container
) -> None:
    c = report_container
    import_real_rates(c.db)  # tests/data/ecb holds publications up to 26 September 2024
    with c.db.begin() as conn:
        book_at(conn, sale("p_pl_q3", "pln", 20_000, 4_600, "PL", "23", "oss"), at(8, 1))
    job_id = ask(api, c, {"type": "oss_return", "period": "2024-Q3"}).json()["id"]
    failed = runner(c).run(job_id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error["code"] == "rate_missing"
    assert failed.error["currency"] == "pln" and failed.error["date"] == "2024-09-30"
    assert "PLN" in failed.error["message"] and "2024-09-30" in failed.error["message"]
    assert objects(c) == [] and unfinished_uploads(c) == []
    assert events(c, job_id) == ["job.failed"]


class Crash(BaseException):
    """The worker dies (a BaseException, as SystemExit: nothing in the stage may catch it)."""


def test_a_crash_between_the_s3_writes_and_the_checkpoint_is_redone_and_links_one_complete_set(
    api: TestClient, report_container: Container
) -> None:
    c = report_container
    book_scenario(c.db)
    job_id = ask(api, c, {"type": "oss_return", "period": "2024-Q2"}).json()["id"]
    stored: list[str] = []

    def die(prefix: str) -> None:
        stored.append(prefix)
        raise Crash

    with pytest.raises(Crash):
        runner(c, on_stored=die).run(job_id)
    # Died after the writes, before the checkpoint: a complete set in the bucket, linked by nothing.
    [dead_run] = stored
    assert objects(c) == sorted(dead_run + name for name in OSS_FILES)
    left = load(c, job_id)
    assert left.stage is None and "files" not in left.public["report"] and left.status in ("accepted", "processing")

    # The redelivery: a new run, its set linked, the dead run's set removed by stage tidy.
    done = runner(c).run(job_id)
    assert done.status == "succeeded"
    linked = load(c, job_id)
    assert linked.public["report"]["location"].removeprefix(f"s3://{reports_bucket(c.settings)}/") != dead_run
    assert objects(c) == linked_keys(linked) and [k.rsplit("/", 1)[1] for k in objects(c)] == OSS_FILES
    assert linked.stage_results["tidy"] == {"removed": 4}
    assert read_json(c, linked.public["report"]["location"] + "oss-return.json")["total_vat_eur"] == Q2_VAT_DUE
    assert events(c, job_id) == ["job.succeeded"]


def test_two_copies_racing_link_one_complete_set_and_leave_no_other(
    api: TestClient, report_container: Container
) -> None:
    c = report_container
    book_scenario(c.db)
    job_id = ask(api, c, {"type": "oss_return", "period": "2024-Q2"}).json()["id"]
    both_stored = threading.Barrier(2, timeout=30)
    prefixes: list[str] = []
    outcomes: dict[int, Any] = {}

    def meet(prefix: str) -> None:
        prefixes.append(prefix)
        both_stored.wait()  # neither copy checkpoints before both have written their whole set

    def copy(n: int) -> None:
        try:
            outcomes[n] = runner(c, on_stored=meet).run(job_id)
        except Exception as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=copy, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(prefixes)) == 2  # each copy wrote under its own run
    winners = [o for o in outcomes.values() if isinstance(o, Job)]
    losers = [o for o in outcomes.values() if isinstance(o, Superseded)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    job = load(c, job_id)
    assert job.status == "succeeded" and winners[0].status == "succeeded"
    # One set linked, complete; the other copy's set deleted; nothing half-written left behind.
    keys = linked_keys(job)
    assert [k.rsplit("/", 1)[1] for k in keys] == OSS_FILES
    assert objects(c) == keys and unfinished_uploads(c) == []
    assert read_json(c, job.public["report"]["location"] + "oss-return.json")["total_vat_eur"] == Q2_VAT_DUE
    assert events(c, job_id) == ["job.succeeded"]
    # The loser's redelivery finds the job settled and changes nothing.
    assert runner(c).run(job_id).public["report"] == job.public["report"]
    assert objects(c) == keys
