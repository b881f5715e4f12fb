"""Metrics of a running stack under load: promtool-clean scrapes, the named families present and moving, and a
worker port that serves every process's metrics aggregated (prometheus-client multiprocess mode).

The stack runs two worker processes, so the worker's port can only show every job when it aggregates.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Stack, stack_dir, start_stack, stop_stack, wait_for
from tests.integration.observability.promtool import NAMED_FAMILIES, assert_promtool_clean_metrics

pytestmark = pytest.mark.xdist_group("e2e")

SUCCEEDING = 16
DECLINED = 4
PAYMENTS = SUCCEEDING + DECLINED


@dataclass
class Scrape:
    target: str  # "ingest" or "worker"
    text: str
    during_load: bool

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels`` (0 when there is none)."""
        total = 0.0
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def label_values(self, name: str, label: str) -> set[str]:
        return {
            sample.labels[label]
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
            if sample.name == name and label in sample.labels
        }

    def families(self) -> set[str]:
        names = set()
        for family in text_string_to_metric_families(self.text):
            names.add(f"{family.name}_total" if family.type == "counter" else family.name)
        return names


@dataclass
class Load:
    stack: Stack
    before: dict[str, Scrape]
    after: dict[str, Scrape]
    during: list[Scrape] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)


def scrape(stack: Stack, target: str, during_load: bool = False) -> Scrape:
    url = (
        f"{stack.internal_url}/metrics"
        if target == "ingest"
        else f"http://127.0.0.1:{stack.env['PAYMENTS_METRICS_PORT']}/metrics"
    )
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return Scrape(target, response.text, during_load)


def send_payments(stack: Stack, headers: dict[str, str], job_ids: list[str]) -> None:
    methods = ["pm_card_visa"] * SUCCEEDING + ["pm_card_chargeDeclinedInsufficientFunds"] * DECLINED
    with httpx.Client(base_url=stack.ingest_url, timeout=15) as client:
        for i, method in enumerate(methods):
            body = {
                "customer": {"id": f"cus_obs_{uuid.uuid4().hex[:8]}", "email": f"obs{i}@example.ie", "country": "IE"},
                "amount": 1000 + i,
                "currency": "EUR",
                "payment_method": method,
            }
            accepted = client.post("/v1/payments", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
            assert accepted.status_code == 202, accepted.text
            job_ids.append(accepted.json()["id"])
            time.sleep(0.1)


@pytest.fixture(scope="module")
def load() -> Iterator[Load]:
    where = stack_dir()
    stack = start_stack(where, {"PAYMENTS_WORKER_PROCESSES": "2"})
    try:
        headers = {"Authorization": f"Bearer {stack.token('operator')}"}
        # The scheduler refreshes the queue gauges every 15 s.
        wait_for(lambda: "visible" in scrape(stack, "worker").label_values("payments_queue_messages", "state"), 45)
        before = {target: scrape(stack, target) for target in ("ingest", "worker")}
        job_ids: list[str] = []
        errors: list[BaseException] = []

        def sender() -> None:
            try:
                send_payments(stack, headers, job_ids)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        during: list[Scrape] = []
        while thread.is_alive():
            during.extend(scrape(stack, target, during_load=True) for target in ("ingest", "worker"))
            time.sleep(0.3)
        thread.join()
        assert not errors, errors

        def settled() -> list[dict[str, Any]] | None:
            jobs = [
                httpx.get(f"{stack.ingest_url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
                for job_id in job_ids
            ]
            return jobs if all(job["status"] not in ("accepted", "processing") for job in jobs) else None

        jobs = wait_for(settled, timeout=120)
        # Both targets read the same multiprocess directory: wait until both show every job.
        wait_for(
            lambda: (
                scrape(stack, "ingest").value("payments_jobs_total")
                == scrape(stack, "worker").value("payments_jobs_total")
                >= before["worker"].value("payments_jobs_total") + PAYMENTS
            ),
            timeout=30,
        )
        after = {target: scrape(stack, target) for target in ("ingest", "worker")}
        yield Load(stack, before, after, during, jobs)
    finally:
        code = stop_stack(stack)
        shutil.rmtree(where, ignore_errors=True)
    assert code == 0, stack.log()[-3000:]


def test_the_payments_settle_as_planned(load: Load) -> None:
    statuses = [job["status"] for job in load.jobs]
    assert statuses.count("succeeded") == SUCCEEDING and statuses.count("failed") == DECLINED, statuses


def test_scrapes_during_load_are_promtool_clean(load: Load) -> None:
    targets_during = {s.target for s in load.during}
    assert targets_during == {"ingest", "worker"}, "no scrape of each target was taken while payments were sent"
    final = load.after["worker"].value("payments_jobs_total")
    assert any(s.value("payments_jobs_total") < final for s in load.during), "every scrape was taken after the load"
    for s in [*load.during, *load.after.values()]:
        assert_promtool_clean_metrics(s.text, f"the {s.target} scrape{' during load' if s.during_load else ''}")


def test_the_named_families_are_on_both_scrapes(load: Load) -> None:
    for target, s in load.after.items():
        missing = set(NAMED_FAMILIES) - s.families()
        assert not missing, f"{target} scrape lacks {sorted(missing)}"
        assert s.label_values("payments_queue_messages", "state") >= {"visible", "in_flight", "dlq"}
        assert "payments.fifo" in s.label_values("payments_queue_messages", "queue")
        assert s.value("payments_circuit_open", dependency="stripe") == 0
        assert s.value("payments_jobs_stuck") == 0


def test_the_named_families_move_with_the_payments(load: Load) -> None:
    before, after = load.before["worker"], load.after["worker"]

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved("payments_jobs_total", kind="payment", outcome="succeeded") == SUCCEEDING
    assert moved("payments_jobs_total", kind="payment", outcome="failed") == DECLINED
    posted = moved("payments_http_request_duration_seconds_count", route="/v1/payments", method="POST", status="202")
    assert posted == PAYMENTS
    for stage in ("fraud", "vat", "charge"):
        assert moved("payments_stage_duration_seconds_count", pipeline="payment", stage=stage) >= PAYMENTS, stage
    assert moved("payments_stage_duration_seconds_count", pipeline="payment", stage="notify") >= SUCCEEDING
    assert moved("payments_stripe_requests_total", outcome="ok") >= SUCCEEDING
    assert moved("payments_stripe_requests_total", outcome="declined") >= DECLINED
    assert moved("payments_stripe_request_duration_seconds_count") == moved("payments_stripe_requests_total")
    charged = sum(job["amounts"]["total"] for job in load.jobs if job["status"] == "succeeded")
    assert moved("payments_amount_minor_units_total", currency="eur", kind="payment") == charged


def test_the_worker_port_aggregates_every_process(load: Load) -> None:
    """Two worker processes, an ingest and a scheduler write the metrics; the worker's one port shows them all."""
    worker, ingest = load.after["worker"], load.after["ingest"]
    # HTTP timings are observed only in the ingest process, queue gauges only in the scheduler process.
    assert worker.value("payments_http_request_duration_seconds_count", route="/v1/payments") >= PAYMENTS
    assert worker.label_values("payments_queue_messages", "queue")
    # Every job counted once, whichever worker process ran it, and the same total from either target.
    for outcome in ("succeeded", "failed"):
        counted = worker.value("payments_jobs_total", outcome=outcome)
        assert counted == ingest.value("payments_jobs_total", outcome=outcome), outcome
    files = list((load.stack.data_dir / "prometheus").glob("*.db"))
    pids = {f.stem.rsplit("_", 1)[-1] for f in files}
    assert len(pids) >= 4, f"expected files from the ingest, the scheduler and two worker processes: {sorted(pids)}"
