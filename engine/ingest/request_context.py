"""Every ingest request's correlation id and duration, as pure ASGI middleware.

The correlation id is the caller's ``X-Request-ID`` (checked first: it is stored and logged, so a bad one is
refused 400 and never echoed or logged) or a new one; it is bound to the log context for the request, left in the
request's state for the routes, echoed as ``X-Request-ID`` and carried in the job's message.  The duration goes to
``payments_http_request_duration_seconds`` by route template (never the raw path: ids would explode it).

Pure ASGI rather than ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs each request in a task
group with memory streams between the layers, which cost the ingest more CPU per request than the route itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from engine.ingest.errors import ApiError
from engine.ingest.headers import check_request_id
from engine.runtime import metrics
from engine.runtime.logs import bind, unbind

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestContextMiddleware:
    """Binds the correlation id around the request, echoes it, and times the request by route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        refused: ApiError | None = None
        try:
            correlation = check_request_id(_header(scope, b"x-request-id")) or uuid.uuid4().hex
        except ApiError as exc:
            correlation, refused = uuid.uuid4().hex, exc
        scope.setdefault("state", {})["correlation_id"] = correlation
        echoed = (b"x-request-id", correlation.encode())
        status = [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        tokens = bind(correlation, None)
        try:
            if refused is not None:
                await refused.response()(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            unbind(tokens)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        metrics.HTTP_SECONDS.labels(template, scope["method"], str(status[0])).observe(time.perf_counter() - started)


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), decoded as Starlette decodes headers (latin-1)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None
