"""Prometheus scenario: a real Prometheus server scrapes a running stack during a load and is asked for the job rate.

Proves the metrics scrapeable end to end (exposition → scrape → TSDB → PromQL), not a speed claim.  Started here:
``payments run`` (embedded services, two worker processes, its own data directory under ``var/``) and the
``prometheus`` binary (Debian's package), scraping the ingest's ``/metrics`` (on its internal port) and the
worker's metrics port every second.  Payments are posted from a few client threads for the whole window.

* **value** — ``sum(rate(payments_jobs_total{job="payments-worker"}[W]))`` from Prometheus' HTTP API, evaluated at
  the end of the measured window W;
* **baseline** — the same counter read straight from the worker's metrics port at both ends of that window,
  (last − first) / elapsed.

The ratio should be close to 1 (Prometheus' rate extrapolates to the window's edges, so not exactly 1).  No
``prometheus`` binary: the scenario is skipped.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import Figure, SkipScenario
from sandbox.ports import free_port
from sandbox.process import ManagedProcess
from sandbox.stack_process import StackProcess

NAME = "prometheus"
ROOT = Path(__file__).resolve().parents[1]
#: Client threads posting payments (each waits for its 202 before the next).
SENDERS = 4
SCRAPE_INTERVAL_SECONDS = 1
STACK_TIMEOUT_SECONDS = 180.0


def _jobs_total(text: str, kind: str = "payment") -> float:
    """Sum of ``payments_jobs_total{kind=...}`` samples in a scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "payments_jobs_total" and sample.labels.get("kind") == kind
    )


def _start_stack() -> tuple[StackProcess, Path]:
    """``payments run`` on free ports (two worker processes), its data under ``var/bench-prometheus-*``."""
    # Under the project's var/: the embedded PostgreSQL (run as root) needs a path its system user can traverse.
    where = ROOT / "var" / f"bench-prometheus-{uuid.uuid4().hex[:8]}"
    where.mkdir(parents=True)
    settings = {
        "PAYMENTS_WORKER_PROCESSES": "2",
        "PAYMENTS_SQS_WAIT_TIME_SECONDS": "1",
        "PAYMENTS_RATE_LIMIT_PER_MINUTE": "0",
        "PAYMENTS_LOG_LEVEL": "WARNING",
    }
    try:
        return StackProcess.start(where, settings, timeout=STACK_TIMEOUT_SECONDS, cwd=ROOT), where
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)
        raise


def _worker_jobs_total(stack: StackProcess) -> float:
    return _jobs_total(httpx.get(stack.metrics_url, timeout=10).text)


@contextlib.contextmanager
def _prometheus(binary: str, targets: dict[str, str]) -> Iterator[str]:
    """A Prometheus server scraping ``targets`` (job name → host:port) every second; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="bench-prometheus-") as tmp:
        config = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s", "evaluation_interval": "15s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
            ],
        }
        config_path = Path(tmp) / "prometheus.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        port = free_port()
        prometheus = ManagedProcess(
            "prometheus",
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={Path(tmp) / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            log=Path(tmp) / "prometheus.log",
        ).start()
        url = f"http://127.0.0.1:{port}"
        try:
            prometheus.wait_for_http(f"{url}/-/ready", timeout=60)
            yield url
        finally:
            prometheus.stop(grace=30)


def _query(url: str, promql: str, at: float) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql, "time": f"{at:.3f}"}, timeout=10)
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus query {promql!r} failed: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _send(ingest: str, token: str, stop: threading.Event, sent: list[int]) -> None:
    """Post payments (one customer each: the fraud velocity rule counts per customer) until ``stop``."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=ingest, timeout=30) as client:
        while not stop.is_set():
            body = {
                "customer": {"id": f"cus_bp_{uuid.uuid4().hex[:10]}", "email": "bench@example.ie", "country": "IE"},
                "amount": 1000,
                "currency": "EUR",
                "payment_method": "pm_card_visa",
            }
            response = client.post("/v1/payments", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
            if response.status_code == 202:
                sent.append(1)
            else:
                time.sleep(0.2)  # 503 while a queue is briefly unavailable: back off, keep the load going


def run(quick: bool) -> list[Figure]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SkipScenario("no prometheus binary (Debian: apt-get install prometheus)")
    warmup, window = (5.0, 15.0) if quick else (10.0, 40.0)
    stack, where = _start_stack()
    try:
        token = stack.token(sub="bench")
        targets = {
            "payments-ingest": stack.internal_url.removeprefix("http://"),
            "payments-worker": stack.metrics_url.removeprefix("http://").removesuffix("/metrics"),
        }
        with _prometheus(binary, targets) as prom:
            stop = threading.Event()
            sent: list[int] = []
            senders = [
                threading.Thread(target=_send, args=(stack.ingest_url, token, stop, sent), daemon=True)
                for _ in range(SENDERS)
            ]
            for t in senders:
                t.start()
            try:
                time.sleep(warmup)
                first, t0 = _worker_jobs_total(stack), time.time()
                time.sleep(window)
                last, t1 = _worker_jobs_total(stack), time.time()
            finally:
                stop.set()
                for t in senders:
                    t.join(timeout=60)
            # Let Prometheus scrape past the end of the window before asking about it.
            time.sleep(3 * SCRAPE_INTERVAL_SECONDS)
            up = {r["metric"]["job"]: r["value"][1] for r in _query(prom, "up", t1)}
            if up != {"payments-ingest": "1", "payments-worker": "1"}:
                raise RuntimeError(f"Prometheus could not scrape every target: up = {up}")
            seconds = round(t1 - t0)
            promql = f'sum(rate(payments_jobs_total{{job="payments-worker",kind="payment"}}[{seconds}s]))'
            result = _query(prom, promql, t1)
            if not result:
                raise RuntimeError(f"Prometheus has no data for {promql}")
            scraped_rate = float(result[0]["value"][1])
    except BaseException:
        stack.stop()
        print(f"payments run log (tail):\n{stack.process.log_tail(3000)}", file=sys.stderr)
        shutil.rmtree(where, ignore_errors=True)
        raise
    stack.stop()
    shutil.rmtree(where, ignore_errors=True)
    direct_rate = (last - first) / (t1 - t0)
    note = (
        f"{promql} at the end of a {seconds}s window under load ({len(sent)} payments posted by {SENDERS} clients, "
        f"2 worker processes, scrape every {SCRAPE_INTERVAL_SECONDS}s); baseline: the same counter read from the "
        f"worker's metrics port at both ends of the window ({last - first:.0f} jobs). Expect a ratio near 1."
    )
    print(f"prometheus: job rate {scraped_rate:.3f}/s via Prometheus, {direct_rate:.3f}/s direct", file=sys.stderr)
    return [
        Figure(
            NAME,
            "job rate via Prometheus rate(payments_jobs_total)",
            "jobs/s",
            scraped_rate,
            direct_rate,
            "direct scrape",
            "higher",
            note,
        )
    ]


if __name__ == "__main__":
    for figure in run("--quick" in sys.argv):
        print(json.dumps(figure.as_dict(), indent=2))
