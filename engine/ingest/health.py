"""Dependency checks for ``/health``: each answers ``{"ok", "latency_ms", "detail"}``.

``/health`` is 200 only when every part is up (database, queues, Redis, at least one live worker and, when
embedded, the Stripe sandbox); ``/health/ready`` needs what the ingest itself needs to accept a job
(database and queues); ``/health/live`` only says the process answers.
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


def _check_stripe(c: Container) -> str:
    import httpx

    base = c.endpoints.stripe_api_base
    if not base:
        return "external"
    response = httpx.get(f"{base.rstrip('/')}/_sim/config", timeout=CHECK_TIMEOUT_SECONDS)
    response.raise_for_status()
    return base


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
