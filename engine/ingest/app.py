"""The ingest application factory."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from engine.bootstrap import Container, bootstrap
from engine.ingest.errors import install_error_handlers
from engine.ingest.health import READY_CHECKS, run_checks


def create_app(container: Container | None = None) -> FastAPI:
    """Build the FastAPI app around ``container`` (made from the settings when omitted)."""
    c = container or bootstrap()
    app = FastAPI(
        title="payments-engine ingest",
        version="1",
        description="Accepts payment, refund, subscription and settlement jobs onto SQS FIFO queues.",
    )
    app.state.container = c
    install_error_handlers(app)

    @app.get("/health", tags=["operations"])
    async def health() -> JSONResponse:
        checks = await run_checks(c)
        ok = all(check["ok"] for check in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/health/live", tags=["operations"])
    async def live() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/health/ready", tags=["operations"])
    async def ready() -> JSONResponse:
        checks = await run_checks(c, READY_CHECKS)
        ok = all(check["ok"] for check in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        from engine.metrics import render_latest

        body, content_type = render_latest()
        return Response(content=body, media_type=content_type)

    return app
