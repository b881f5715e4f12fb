"""Request body limits: a body above its route's limit is answered 413 ``body_too_large`` naming the limit.

Three limits (``PAYMENTS_HTTP_MAX_*_BYTES``): Stripe webhooks (64 KiB: the route is unauthenticated, so it must
not buffer what anyone sends), settlement CSV uploads (streamed to S3, capped all the same) and every other body
(JSON, 1 MiB).  A declared ``Content-Length`` above the limit is refused before a byte is read; a body sent without
one (chunked) is counted as it arrives and refused when it crosses the limit, so nothing above the limit is ever
held in memory or passed on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from engine.ingest.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WEBHOOK_PATH = "/webhooks/stripe"
SETTLEMENT_PATH = "/v1/settlements"


@dataclass(frozen=True)
class BodyLimits:
    """The largest body accepted per kind of route, in bytes."""

    json: int
    webhook: int
    settlement: int

    def for_path(self, path: str) -> tuple[int, str]:
        """The limit for a request to ``path`` and the setting that sets it."""
        if path == WEBHOOK_PATH:
            return self.webhook, "PAYMENTS_HTTP_MAX_WEBHOOK_BYTES"
        if path == SETTLEMENT_PATH:
            return self.settlement, "PAYMENTS_HTTP_MAX_SETTLEMENT_BYTES"
        return self.json, "PAYMENTS_HTTP_MAX_JSON_BYTES"


class BodyTooLarge(ApiError):
    """A request body above its limit (413)."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(
            413,
            "body_too_large",
            f"The request body is larger than {limit} bytes, the most this route accepts ({setting}).",
            error_type="invalid_request_error",
        )


class BodyLimitMiddleware:
    """Pure ASGI middleware (no buffering of its own) that enforces :class:`BodyLimits`."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, setting = self.limits.for_path(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer(BodyTooLarge(limit, setting), send)
            return
        received = 0
        exceeded: BodyTooLarge | None = None
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = BodyTooLarge(limit, setting)
                    raise exceeded
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded is not None and not started:
                # The app turned the interrupted read into an answer of its own (FastAPI makes it a 400 "error
                # parsing the body"): the client gets the 413 instead, and nothing of the app's answer.
                if message["type"] == "http.response.start":
                    started = True
                    await _answer(exceeded, send)
                return
            if exceeded is not None:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except* BodyTooLarge as group:
            # except*: a layer that runs the request in a task group (anyio) would wrap it in a group.
            if not started:
                await _answer(_first(group), send)


def _first(group: BaseExceptionGroup[BodyTooLarge]) -> BodyTooLarge:
    for exc in group.exceptions:
        return exc if isinstance(exc, BodyTooLarge) else _first(exc)
    raise group


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer(error: ApiError, send: Send) -> None:
    response = error.response()
    response.headers["Connection"] = "close"  # the rest of the body is not read; the connection cannot be reused
    await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
