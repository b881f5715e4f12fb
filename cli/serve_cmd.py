"""``payments serve``: the ingest HTTP server alone (the Procfile's ``web``)."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default=None, help="Bind address (default PAYMENTS_HTTP_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default PAYMENTS_HTTP_PORT, 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Uvicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the ingest API (FastAPI on uvicorn)."""
    import uvicorn

    from config.settings import get_settings
    from engine.runtime.logs import configure_logging

    s = get_settings()
    configure_logging(s)  # one handler and formatter for every logger, uvicorn's included
    uvicorn.run(
        "engine.ingest.asgi:app",
        host=host or s.http.host,
        port=port or s.http.port,
        workers=workers,
        log_level=s.log.level.lower(),
        access_log=False,
        log_config=None,  # uvicorn's own handlers printed its lines in its own format beside ours
        # The client address comes from PAYMENTS_HTTP_TRUSTED_PROXIES only (engine/ingest/client_address.py):
        # uvicorn's own handling trusts X-Forwarded-For from 127.0.0.1, so any local process could claim any address.
        proxy_headers=False,
    )
