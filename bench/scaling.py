"""Scaling scenario: 1, 2 and 4 worker processes against one ingest, one queue and one PostgreSQL.

The payments scenario's setup (:mod:`bench.payments`: the same payments, the same 16 HTTP clients, the same ingest
and worker processes with default settings, a fresh scratch database, queue prefix and Redis prefix per
configuration), with the Stripe sandbox at +250 ms (a worker then waits on the gateway more than it computes, as it
would against the real Stripe), run with W = 1, 2 and 4 worker processes.  Figures: payments/s with W workers
against the single worker's rate, and the efficiency ``rate(W) / (W × rate(1))`` (1.0 = linear).

On the shared 2-core machine this runs on, W workers share two cores with the ingest, the SQS endpoint, the sandbox
and PostgreSQL: a falling efficiency says as much about the machine as about the design (docs/scaling.md models
the fleet against the real limits).  ``BENCH_SCALING_N`` payments per configuration (default 300, quick 100).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from typing import Any

from bench.common import Figure
from bench.payments import (
    CONCURRENCY,
    PAYMENTS_PER_CUSTOMER,
    STATS_SETTLE_SECONDS,
    _statuses,
    _submit,
    _wait_consuming,
    _wait_notified,
    _wait_settled,
    payment_body,
)
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
)
from sandbox.ports import free_port
from sandbox.process import stop_all

NAME = "scaling"
WORKERS = (1, 2, 4)
LATENCY_MS = 250.0


def run_workers(stack: Services, redis: Any, workers: int, n: int) -> tuple[float, str]:
    """Start one ingest and ``workers`` worker processes on fresh state; submit N payments; return
    (payments/s, note).  Raises RuntimeError when a payment is not accepted or does not settle."""
    import httpx
    import sqlalchemy as sa

    run = uuid.uuid4().hex[:8]
    redis_prefix = f"bench:{run}:"
    queue_prefix = f"b{run}-"
    jwt_secret = secrets.token_urlsafe(32)
    assert stack.stripe_url is not None
    httpx.post(f"{stack.stripe_url}/_sim/config", json={"latency_ms": LATENCY_MS}).raise_for_status()
    provision_queues(stack.aws_url, queue_prefix)
    with scratch_database(f"scaling_{workers}w") as db_url:
        env = engine_env(stack, db_url, redis_prefix, queue_prefix, jwt_secret)
        port = free_port()
        ingest = ProbedProcess(f"ingest-{run}", ["ingest", str(port)], env, stack.workdir).start()
        procs = [ProbedProcess(f"worker-{run}-{i}", ["worker"], env, stack.workdir).start() for i in range(workers)]
        db = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
        try:
            url = f"http://127.0.0.1:{port}"
            ingest.wait_for_http(f"{url}/health/live")
            for proc in procs:
                _wait_consuming(proc)
            token = mint_token(jwt_secret)
            customers = max(1, n // PAYMENTS_PER_CUSTOMER)
            bodies = [payment_body(run, i, customers) for i in range(n)]
            time.sleep(STATS_SETTLE_SECONDS)
            started = time.perf_counter()
            http = asyncio.run(_submit(url, token, bodies, CONCURRENCY))
            accepted = http.get(202, 0)
            settled_at = _wait_settled(db, accepted, started)
            _wait_notified(redis, redis_prefix, accepted)
            statuses = _statuses(db)
        finally:
            db.dispose()
            stop_all([*procs, ingest], grace=5)
            delete_prefix(redis, redis_prefix)
    if accepted != n:
        raise RuntimeError(f"{workers} workers: only {accepted} of {n} payments were accepted: {http}")
    rate = n / (settled_at - started)
    return rate, f"W={workers}, N={n}, Stripe +{LATENCY_MS:.0f} ms, {CONCURRENCY} HTTP clients, {statuses}"


def run(quick: bool) -> list[Figure]:
    """Payments/s with 1, 2 and 4 workers; each against the single worker's rate, and the efficiency vs linear."""
    n = int(os.environ.get("BENCH_SCALING_N", "100" if quick else "300"))
    redis = redis_client()
    with services(with_stripe=True) as stack:
        results = {w: run_workers(stack, redis, w, n) for w in WORKERS}
    one, one_note = results[1]
    figures: list[Figure] = []
    for w in WORKERS[1:]:
        rate, note = results[w]
        figures += [
            Figure(
                NAME, f"payments/s, {w} workers", "payments/s", rate, one, "1 worker", "higher", f"{note} | {one_note}"
            ),
            Figure(
                NAME,
                f"payments/s per worker, {w} workers (efficiency vs linear)",
                "payments/s",
                rate / w,
                one,
                "1 worker (linear: ratio 1.0)",
                "higher",
                f"{note} | {one_note}",
            ),
        ]
    return figures
