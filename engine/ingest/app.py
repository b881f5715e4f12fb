"""The ingest application factory: each job kind's routes (``pipelines/registry.py``), the routes every kind
shares (``engine/ingest/routes.py``) and the health verdicts.  Metrics and the detailed health checks are on the
internal port (``engine/ingest/internal.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from engine.ingest.body_limit import BodyLimitMiddleware, BodyLimits
from engine.ingest.client_address import parse_networks
from engine.ingest.docs_pages import install_docs
from engine.ingest.errors import install_error_handlers
from engine.ingest.health import READY_CHECKS, run_checks
from engine.ingest.openapi import contract, install_openapi, operation_id
from engine.ingest.ratelimit import Limits, RateLimiter, RateLimitMiddleware
from engine.ingest.request_context import RequestContextMiddleware
from engine.ingest.routes import build_router
from engine.ingest.schemas import HealthVerdict, Liveness
from engine.runtime.container import Container, bootstrap

#: How often the ingest's relay looks for rows nobody kicked it for (rows left by a failed send, or by a CLI).
RELAY_IDLE_SECONDS = 1.0
#: How long the relay waits after a kick for other requests' rows: their messages share one SendMessageBatch and
#: one claiming commit, instead of a call and a commit per accepted job.  The 202 does not wait for it; the
#: hand-off to SQS is this much later at most.
RELAY_LINGER_SECONDS = 0.02


def create_app(container: Container | None = None) -> FastAPI:
    """Build the FastAPI app around ``container`` (made from the settings when omitted)."""
    c = container or bootstrap()
    app = FastAPI(
        title="payments-engine ingest",
        version="1",
        description="Accepts payment, refund, subscription and settlement jobs onto SQS FIFO queues.",
        lifespan=_relay_lifespan(c),
        generate_unique_id_function=operation_id,
        docs_url=None,  # FastAPI's pages load from a CDN: install_docs serves bundled ones
        redoc_url=None,
    )
    install_openapi(app)
    install_docs(app)
    app.state.container = c
    install_error_handlers(app)
    _install_rate_limit(app, c)
    # Outside the rate limiter, so that a 429 carries the X-Request-ID and is timed too.
    app.add_middleware(RequestContextMiddleware)
    http = c.settings.http
    # Added last, so it runs first: a body above its limit is refused before any other work is done for it.
    app.add_middleware(
        BodyLimitMiddleware,
        limits=BodyLimits(
            json=http.max_json_bytes, webhook=http.max_webhook_bytes, settlement=http.max_settlement_bytes
        ),
    )
    # Each kind's routes, built by the container (their parameters name what they need).
    for kind in c.kinds:
        if kind.routes is not None:
            app.include_router(c.build(kind.routes))
    app.include_router(build_router(c))

    @app.get(
        "/health",
        tags=["operations"],
        summary="The service's verdict",
        openapi_extra=contract(),
        responses=_VERDICT_RESPONSES,
    )
    async def health() -> JSONResponse:
        # Public: the verdict only.  Which part is down, with hosts and errors, is on the internal port.
        checks = await run_checks(c)
        return _verdict(all(check["ok"] for check in checks.values()))

    @app.get(
        "/health/live", tags=["operations"], summary="The process answers", openapi_extra=contract(answer=Liveness)
    )
    async def live() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get(
        "/health/ready",
        tags=["operations"],
        summary="Ready to accept jobs (database, queues)",
        openapi_extra=contract(),
        responses=_VERDICT_RESPONSES,
    )
    async def ready() -> JSONResponse:
        checks = await run_checks(c, READY_CHECKS)
        return _verdict(all(check["ok"] for check in checks.values()))

    return app


def _relay_lifespan(c: Container) -> Any:
    """While the app serves: an outbox relay thread that sends accepted jobs' messages to SQS, woken by each
    commit and batching what several requests committed meanwhile (``engine/ingest/accept.py``)."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from engine.jobs.kind import Lazy
        from engine.ops.outbox_relay import OutboxRelay

        relay = OutboxRelay(c.db, Lazy(lambda: c.broker), interval=RELAY_IDLE_SECONDS, linger=RELAY_LINGER_SECONDS)
        relay.start()
        c.acceptor.use_relay(relay)
        try:
            yield
        finally:
            c.acceptor.use_relay(None)
            await asyncio.to_thread(relay.stop)

    return lifespan


_VERDICT = {"application/json": {"schema": {"$ref": "#/components/schemas/HealthVerdict"}}}
_VERDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Healthy.", "model": HealthVerdict},
    503: {"description": "Degraded: which dependency is down is on the internal port.", "content": _VERDICT},
}


def _verdict(ok: bool) -> JSONResponse:
    return JSONResponse({"status": "ok" if ok else "degraded"}, status_code=200 if ok else 503)


def _install_rate_limit(app: FastAPI, c: Container) -> None:
    """POST requests per token subject within its merchant (or client address) and minute, Stripe webhooks in a
    bucket of their own (``engine/ingest/ratelimit.py``); reads are never limited."""
    s = c.settings
    on = s.rate_limit_per_minute > 0 or s.rate_limit_webhook_per_minute > 0
    limits = Limits(
        per_minute=s.rate_limit_per_minute,
        webhook_per_minute=s.rate_limit_webhook_per_minute,
        fail_open=s.rate_limit_fail_open,
        trusted_proxies=parse_networks(s.http.trusted_proxies),
    )
    limiter = RateLimiter(_redis_url(c) if on else None, c.redis_prefix)
    app.add_middleware(RateLimitMiddleware, limiter=limiter, limits=limits, verifier=c.verifier)


def _redis_url(c: Container) -> str | None:
    """Redis's URL, or ``None`` when Redis is neither configured nor running (the limiter then counts nothing)."""
    try:
        return c.endpoints.require("redis").redis_url
    except Exception:
        return None
