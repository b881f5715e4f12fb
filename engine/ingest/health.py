"""Dependency checks for ``/health``: each answers ``{"ok", "latency_ms", "detail"}``.

``/health`` is 200 only when every part is up (database, queues, Redis, at least one live worker and Stripe:
its circuit breaker closed and a real API call answering); ``/health/ready`` needs what the ingest itself needs to
accept a job (database and queues); ``/health/live`` only says the process answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from engine.runtime.container import Container

CHECK_TIMEOUT_SECONDS = 3.0
READY_CHECKS = ("database", "queues")


def _check_database(c: Container) -> str:
    import sqlalchemy as sa

    with c.db.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return "ok"


def _check_queues(c: Container) -> str:
    name = c.queues.resolve("payments").name(c.settings.queue_prefix)
    c.sqs.get_queue_url(QueueName=name)
    return name


def _check_redis(c: Container) -> str:
    c.redis.ping()
    return "ok"


def _check_workers(c: Container) -> str:
    from engine.runtime.liveness import live_workers

    count = live_workers(c.redis, c.redis_prefix)
    if count < 1:
        raise RuntimeError("no live worker")
    return f"{count} live"


#: A real Stripe call at most this often per process: /health is polled, Stripe's rate limit is not ours to spend.
STRIPE_CHECK_TTL_SECONDS = 30.0
_stripe_checked: dict[str, float] = {}


def _check_stripe(c: Container) -> str:
    """Stripe through the SDK as the engine uses it — any Stripe-compatible server, no sandbox-only endpoint:
    the circuit breaker's state, then a real API call (``GET /v1/payment_intents?limit=1``, the breaker's own
    probe) at most every :data:`STRIPE_CHECK_TTL_SECONDS`."""
    if not (c.endpoints.stripe_api_base or c.endpoints.stripe_api_key):
        return "not configured"
    gateway = c.stripe
    state = gateway.breaker.state
    if state == "open":
        raise RuntimeError("circuit breaker open: Stripe calls are held")
    where = c.endpoints.stripe_api_base or "api.stripe.com"
    now = time.monotonic()
    if now - _stripe_checked.get(where, float("-inf")) >= STRIPE_CHECK_TTL_SECONDS:
        gateway.client.v1.payment_intents.list(params={"limit": 1}, options={"max_network_retries": 0})
        _stripe_checked[where] = now
    return f"{where} (breaker {state})"


CHECKS: dict[str, Callable[[Container], str]] = {
    "database": _check_database,
    "queues": _check_queues,
    "redis": _check_redis,
    "workers": _check_workers,
    "stripe": _check_stripe,
}


def _timed(name: str, check: Callable[[Container], str], c: Container) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail, ok = check(c), True
    except Exception as exc:  # a health check reports every failure, whatever its kind
        detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
    return {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1), "detail": detail}


async def run_checks(c: Container, names: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
    """Run the named checks (all by default) concurrently, each bounded by a timeout."""
    selected = names or tuple(CHECKS)

    async def one(name: str) -> tuple[str, dict[str, Any]]:
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(_timed, name, CHECKS[name], c), timeout=CHECK_TIMEOUT_SECONDS + 1
            )
        except TimeoutError:
            result = {"ok": False, "latency_ms": (CHECK_TIMEOUT_SECONDS + 1) * 1000, "detail": "timeout"}
        return name, result

    return dict(await asyncio.gather(*(one(n) for n in selected)))
