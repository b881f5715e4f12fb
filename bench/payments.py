"""Payments scenario: payments end to end through the real ingest, queue, worker, Stripe sandbox and ledger.

N payments are POSTed to ``/v1/payments`` by 16 concurrent HTTP clients while the worker processes them.  Measured
per configuration:

* **payments/s** — N / (moment the last job was seen settled − first POST sent); submission and processing overlap;
* **DB commits per payment** — a SQLAlchemy ``commit`` event (class-level on ``Engine``) counted inside the ingest
  and the worker processes;
* **PostgreSQL xact_commit per payment** — ``pg_stat_database.xact_commit`` of the scratch database over the same
  window: every transaction PostgreSQL saw committed, including read-only ones the code never asked to commit
  (``pool_pre_ping``'s ping on each pool checkout is one);
* **SQS API calls per payment** — :class:`engine.broker.call_counter.CallCounter` on the boto3 default session of
  the ingest and the worker processes, so *every* SQS client they make is counted (ingest SendMessage, worker
  receive/delete/visibility, outbox relay send, notifier receive/delete, idle long polls);
* **worker CPU ms per payment** — ``time.process_time()`` of the worker process (all its threads: Dramatiq workers,
  consumers, outbox relay, notifier, heartbeat), read inside that process at both ends of the window.

The counting window runs from just before the first POST until every job is settled *and* every ``job.*``
notification has been delivered (the notifier's Redis marks), plus 1.2 s at each end: PostgreSQL publishes a busy
backend's counters at most once a second, and the last batched deletes flush within 0.05 s.

Configurations: the real payment pipeline with the Stripe sandbox at 0 ms and at 250 ms added latency, and the baseline
docs/benchmarks.md names: *the same pipeline with no-op stages* (same stage names and order, every stage returns an
empty result, so the runner makes only its final checkpoint with the outbox event; whatever the engine's runner does
around the stages stays) through the same ingest, queue, worker, relay and notifier.  The sandbox latency does not
matter to the baseline (no stage calls Stripe).  The payments: B2C card payments in EUR from 15 EU countries, random
amounts, 5 per customer (one FIFO message group each), all approved and captured.

Every part runs in its own process so that the worker's CPU is the worker's alone: the local SQS endpoint (moto
server), the Stripe sandbox (``payments sim stripe``), the ingest (uvicorn, as ``payments serve`` runs it) and the
worker (``run_worker_process``, as ``payments worker`` runs it, default threads), started and stopped by the local
stack's process harness (:mod:`sandbox.process`, see :mod:`bench.services`).  The ingest and the worker run
``python -m bench.probe ROLE``, which installs the counters (:class:`bench.probe.Probe`) before the engine makes any
client, then answers snapshot requests.  PostgreSQL gets a scratch database (created, migrated, dropped); Redis a
private key prefix (deleted afterwards).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.common import Figure
from bench.probe import ProbedProcess
from bench.services import (
    Services,
    delete_prefix,
    engine_env,
    mint_token,
    provision_queues,
    redis_client,
    scratch_database,
    services,
    xact_commit,
)
from sandbox.ports import free_port
from sandbox.process import stop_all

NAME = "payments"
#: Concurrent HTTP clients submitting payments (a busy upstream, not a flood: the ingest answers in ms).
CONCURRENCY = 16
#: Payments per customer (= per FIFO message group); under the fraud rule's 10 per minute per customer.
PAYMENTS_PER_CUSTOMER = 5
#: Long enough for the slow configuration on a loaded 2-core machine; a stuck run ends with an error.
TIMEOUT_SECONDS = 240.0
#: PostgreSQL (15+) publishes a backend's transaction counts when it goes idle, at most once a second.
STATS_SETTLE_SECONDS = 1.2
SETTLED = ("succeeded", "failed", "in_review", "requires_action")
#: Customers' countries (B2C, OSS: the customer's country's rate), so VAT is not one cached answer.
COUNTRIES = ("IE", "DE", "FR", "IT", "ES", "NL", "BE", "AT", "PL", "SE", "PT", "FI", "DK", "CZ", "GR")


def payment_body(run: str, i: int, customers: int) -> dict[str, Any]:
    """A B2C card payment that the fraud rules approve and the sandbox captures (a realistic, successful mix)."""
    rnd = random.Random(i)
    c = i % customers
    return {
        "customer": {"id": f"cus_{run}_{c}", "email": f"c{c}@example.com", "country": COUNTRIES[c % len(COUNTRIES)]},
        "amount": rnd.randrange(500, 50_000),
        "currency": "EUR",
        "payment_method": "pm_card_visa",
        "description": f"order {i}",
    }


async def _submit(url: str, token: str, bodies: list[dict[str, Any]], concurrency: int) -> dict[int, int]:
    """POST every body with ``concurrency`` clients in flight; returns a count per HTTP status."""
    import httpx

    statuses: dict[int, int] = {}
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:

        async def one_client() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/v1/payments", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return statuses


@dataclass
class Result:
    """One configuration's run."""

    label: str
    n: int
    seconds: float
    submit_seconds: float
    statuses: dict[str, int]
    http: dict[int, int]
    ingest: dict[str, Any]
    worker: dict[str, Any]
    pg_commits: int

    @property
    def payments_per_second(self) -> float:
        return self.n / self.seconds

    @property
    def commits(self) -> int:
        return int(self.ingest["commits"] + self.worker["commits"])

    @property
    def sqs_calls(self) -> dict[str, int]:
        calls: dict[str, int] = {}
        for side in (self.ingest["sqs"], self.worker["sqs"]):
            for op, count in side.items():
                calls[op] = calls.get(op, 0) + count
        return calls

    @property
    def worker_cpu_ms(self) -> float:
        return float(self.worker["cpu_seconds"]) * 1000 / self.n

    def note(self) -> str:
        i, w = self.ingest, self.worker
        return (
            f"N={self.n}, {CONCURRENCY} HTTP clients, {self.statuses}; commits ingest/worker "
            f"{i['commits']}/{w['commits']} (PostgreSQL xact_commit, same window: {self.pg_commits}; "
            f"pool checkouts ingest/worker {i['checkouts']}/{w['checkouts']}); "
            f"commits by site ingest {i['commit_sites']} worker {w['commit_sites']}; "
            f"SQS ingest {i['sqs']} worker {w['sqs']}; ingest CPU {i['cpu_seconds'] * 1000 / self.n:.1f} ms/payment; "
            f"submission {self.submit_seconds:.1f} s of {self.seconds:.1f} s"
        )


def _count_diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """``after - before`` per key, the keys whose count moved, most first."""
    moved = {key: count - before.get(key, 0) for key, count in after.items()}
    return dict(sorted(((k, n) for k, n in moved.items() if n), key=lambda item: -item[1]))


def _diff(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    ops = set(after["sqs"]) | set(before["sqs"])
    sqs = {op: after["sqs"].get(op, 0) - before["sqs"].get(op, 0) for op in sorted(ops)}
    return {
        "sqs": {op: n for op, n in sqs.items() if n},
        "commits": after["commits"] - before["commits"],
        "commit_sites": _count_diff(after.get("commit_sites", {}), before.get("commit_sites", {})),
        "checkouts": after["checkouts"] - before["checkouts"],
        "cpu_seconds": after["cpu_seconds"] - before["cpu_seconds"],
    }


def run_config(stack: Services, redis: Any, label: str, n: int, latency_ms: float, noop: bool) -> Result:
    """Start ingest and worker for a fresh database, queue and key prefix; submit N payments; measure."""
    import httpx
    import sqlalchemy as sa

    run = uuid.uuid4().hex[:8]
    redis_prefix = f"bench:{run}:"
    queue_prefix = f"b{run}-"
    jwt_secret = secrets.token_urlsafe(32)
    assert stack.stripe_url is not None
    httpx.post(f"{stack.stripe_url}/_sim/config", json={"latency_ms": latency_ms}).raise_for_status()
    provision_queues(stack.aws_url, queue_prefix)
    with scratch_database(label.replace(" ", "_").replace("@", "").replace("-", "_")) as db_url:
        env = engine_env(stack, db_url, redis_prefix, queue_prefix, jwt_secret)
        port = free_port()
        ingest = ProbedProcess(f"ingest-{run}", ["ingest", str(port)], env, stack.workdir).start()
        worker = ProbedProcess(f"worker-{run}", ["worker", *(["noop"] if noop else [])], env, stack.workdir).start()
        db = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        try:
            url = f"http://127.0.0.1:{port}"
            ingest.wait_for_http(f"{url}/health/live")
            _wait_consuming(worker)
            token = mint_token(jwt_secret)
            customers = max(1, n // PAYMENTS_PER_CUSTOMER)
            bodies = [payment_body(run, i, customers) for i in range(n)]
            time.sleep(STATS_SETTLE_SECONDS)
            pg_before = xact_commit(db_url)
            before_ingest, before_worker = ingest.snapshot(), worker.snapshot()
            started = time.perf_counter()
            http = asyncio.run(_submit(url, token, bodies, CONCURRENCY))
            submitted = time.perf_counter() - started
            accepted = http.get(202, 0)
            settled_at = _wait_settled(db, accepted, started)
            _wait_notified(redis, redis_prefix, accepted)
            # Batched deletes of the last notifications (flushed within 0.05 s) are part of the work; PostgreSQL
            # publishes a busy backend's statistics at most once a second, so both ends of the window wait alike.
            time.sleep(STATS_SETTLE_SECONDS)
            after_ingest, after_worker = ingest.snapshot(), worker.snapshot()
            pg_commits = xact_commit(db_url) - pg_before
            statuses = _statuses(db)
        finally:
            db.dispose()
            # Everything is measured by now.  A graceful worker stop waits out its consumers' 20 s long polls,
            # which would only lengthen `make bench`: a few seconds' grace, then SIGKILL (the database is dropped).
            stop_all([worker, ingest], grace=5)
            delete_prefix(redis, redis_prefix)
    if accepted != n:
        raise RuntimeError(f"{label}: only {accepted} of {n} payments were accepted: {http}")
    noop_runs = after_worker["noop_stage_runs"]
    if (noop_runs > 0) != noop:  # a figure against the wrong baseline is worse than none
        raise RuntimeError(f"{label}: the worker ran {noop_runs} no-op stages (expected {'some' if noop else 'none'})")
    return Result(
        label,
        n,
        settled_at - started,
        submitted,
        statuses,
        http,
        _diff(after_ingest, before_ingest),
        _diff(after_worker, before_worker),
        pg_commits,
    )


def _wait_consuming(worker: ProbedProcess, timeout: float = 60.0) -> None:
    """Wait until the worker's consumers have called ReceiveMessage (both queues)."""
    worker.wait_until(
        lambda: worker.snapshot()["sqs"].get("ReceiveMessage", 0) >= 2,
        timeout=timeout,
        what="the worker to start consuming",
        interval=0.2,
    )


def _wait_settled(db: Any, n: int, started: float) -> float:
    """Poll the jobs table until ``n`` jobs are settled; returns the time (perf_counter) it was seen."""
    import sqlalchemy as sa

    query = sa.text("SELECT count(*) FROM jobs WHERE status = ANY(:s)")
    while time.perf_counter() - started < TIMEOUT_SECONDS:
        with db.connect() as conn:  # a read rolled back, never a commit
            if conn.execute(query, {"s": list(SETTLED)}).scalar_one() >= n:
                return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"not all {n} payments settled within {TIMEOUT_SECONDS:.0f} s")


def _wait_notified(redis: Any, prefix: str, n: int, timeout: float = 60.0) -> None:
    """Wait until the notifier marked ``n`` events delivered (its Redis keys ``{prefix}notified:…``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for _ in redis.scan_iter(match=f"{prefix}notified:*", count=1000)) >= n:
            return
        time.sleep(0.1)
    raise RuntimeError(f"not all {n} notifications were delivered within {timeout:.0f} s")


def _statuses(db: Any) -> dict[str, int]:
    import sqlalchemy as sa

    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")).all()
    return {str(status): int(count) for status, count in rows}


def run(quick: bool) -> list[Figure]:
    """Baseline (no-op stages), then the real pipeline at 0 ms and 250 ms sandbox latency; figures vs baseline."""
    n = int(os.environ.get("BENCH_PAYMENTS_N", "100" if quick else "500"))
    redis = redis_client()
    with services(with_stripe=True) as stack:
        baseline = run_config(stack, redis, "noop", n, 0, noop=True)
        fast = run_config(stack, redis, "real@0ms", n, 0, noop=False)
        slow = run_config(stack, redis, "real@250ms", n, 250, noop=False)
    base_name = "no-op stages"
    figures: list[Figure] = []
    for result, lat in ((fast, 0), (slow, 250)):
        note = f"{result.note()} | baseline: {baseline.note()}"
        figures += [
            Figure(
                NAME,
                f"payments/s, Stripe +{lat} ms",
                "payments/s",
                result.payments_per_second,
                baseline.payments_per_second,
                base_name,
                "higher",
                note,
            ),
            Figure(
                NAME,
                f"DB commits/payment, Stripe +{lat} ms",
                "commits",
                result.commits / n,
                baseline.commits / n,
                base_name,
                "lower",
                note + " | goal (issue 4): ≤ 4 including ingest",
            ),
            Figure(
                NAME,
                f"PostgreSQL xact_commit/payment, Stripe +{lat} ms",
                "transactions",
                result.pg_commits / n,
                baseline.pg_commits / n,
                base_name,
                "lower",
                note + " | every transaction PostgreSQL counted as committed, read-only ones included",
            ),
            Figure(
                NAME,
                f"SQS calls/payment, Stripe +{lat} ms",
                "calls",
                sum(result.sqs_calls.values()) / n,
                sum(baseline.sqs_calls.values()) / n,
                base_name,
                "lower",
                note + " | goal (issue 4): ≤ 1",
            ),
            Figure(
                NAME,
                f"worker CPU/payment, Stripe +{lat} ms",
                "ms",
                result.worker_cpu_ms,
                baseline.worker_cpu_ms,
                base_name,
                "lower",
                note,
            ),
        ]
    figures.append(
        Figure(
            NAME,
            "payments/s, Stripe +250 ms vs +0 ms",
            "payments/s",
            slow.payments_per_second,
            fast.payments_per_second,
            "real pipeline, Stripe +0 ms",
            "higher",
            f"goal (issue 4): ratio ≥ 0.90 (250 ms costs < 10 %) | {slow.note()} | {fast.note()}",
        )
    )
    return figures
