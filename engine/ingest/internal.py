"""The ingest's internal port: ``/metrics`` and the detailed health checks, for Prometheus and operators only.

The public port answers ``/health`` with a verdict alone; revenue per currency (in the metrics) and the hosts,
ports and errors of each dependency (in the detailed checks) are served here, on ``PAYMENTS_HTTP_INTERNAL_HOST``
(127.0.0.1 by default) and ``PAYMENTS_HTTP_INTERNAL_PORT``.  ``payments serve`` listens on both ports in one
process; :class:`PortDispatch` hands each request to the app of the port it arrived on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from engine.ingest.health import READY_CHECKS, run_checks
from engine.runtime.container import Container

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def create_internal_app(c: Container) -> FastAPI:
    """``/metrics`` (Prometheus text) and ``/health``, ``/health/ready`` with every check's detail."""
    app = FastAPI(title="payments-engine ingest (internal)", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> JSONResponse:
        checks = await run_checks(c)
        ok = all(check["ok"] for check in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        checks = await run_checks(c, READY_CHECKS)
        ok = all(check["ok"] for check in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        from engine.runtime.metrics import render_latest

        body, content_type = render_latest()
        return Response(content=body, media_type=content_type)

    return app


class PortDispatch:
    """One ASGI app for two listening sockets: requests that arrived on ``internal_port`` go to ``internal``,
    every other one (and the lifespan) to ``public``."""

    def __init__(self, public: ASGIApp, internal: ASGIApp, internal_port: int) -> None:
        self.public = public
        self.internal = internal
        self.internal_port = internal_port

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        server = scope.get("server")
        if scope["type"] in ("http", "websocket") and server and server[1] == self.internal_port:
            await self.internal(scope, receive, send)
        else:
            await self.public(scope, receive, send)
