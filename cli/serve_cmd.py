"""``payments serve``: the ingest HTTP server alone (the Procfile's ``web``), on its public and internal ports."""

from __future__ import annotations

import socket

import click


def _listen(host: str, port: int) -> socket.socket:
    """A bound listening socket that uvicorn's worker processes inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@click.command()
@click.option("--host", default=None, help="Bind address (default PAYMENTS_HTTP_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default PAYMENTS_HTTP_PORT, 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Uvicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the ingest API (FastAPI on uvicorn).

    The API listens on --host:--port; /metrics and the detailed /health listen on PAYMENTS_HTTP_INTERNAL_HOST:
    PAYMENTS_HTTP_INTERNAL_PORT (127.0.0.1:8001), never on the public address.
    """
    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess

    from config.settings import get_settings
    from engine.runtime.logs import configure_logging

    s = get_settings()
    configure_logging(s)  # one handler and formatter for every logger, uvicorn's included
    public = (host or s.http.host, port or s.http.port)
    internal = (s.http.internal_host, s.http.internal_port)
    if internal[1] == public[1]:
        raise click.UsageError(f"the internal port ({internal[1]}) must differ from the API's port")
    config = uvicorn.Config(
        "engine.ingest.asgi:app",
        workers=workers,
        log_level=s.log.level.lower(),
        access_log=False,
        log_config=None,  # uvicorn's own handlers printed its lines in its own format beside ours
        # The client address comes from PAYMENTS_HTTP_TRUSTED_PROXIES only (engine/ingest/client_address.py):
        # uvicorn's own handling trusts X-Forwarded-For from 127.0.0.1, so any local process could claim any address.
        proxy_headers=False,
    )
    sockets = [_listen(*public), _listen(*internal)]
    server = uvicorn.Server(config)
    if workers > 1:
        Multiprocess(config, sockets=sockets).run()
    else:
        server.run(sockets=sockets)
