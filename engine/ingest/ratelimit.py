"""Rate limits on POST requests, counted in Redis and shared by every ingest process.

Who is counted: an authenticated request by its token's subject (so clients behind one load balancer do not
share a bucket, and one client cannot escape its bucket by changing address), any other request by its client
address (:mod:`engine.ingest.client_address`); ``/webhooks/stripe`` has a bucket of its own, so a noisy API client
never gets Stripe's deliveries refused.  A fixed one-minute window: one Redis call per request (a Lua script: INCR,
and EXPIRE on the first hit), made on the event loop with redis.asyncio (no thread hop per request).  Every limited
answer carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``; a 429 also ``Retry-After``.
When Redis is unreachable the limiter lets requests through (``PAYMENTS_RATE_LIMIT_FAIL_OPEN``, the default: losing
the limiter must not stop payments) or answers 503, and counts it either way in
``payments_rate_limiter_unavailable_total``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from engine.adapters.auth import AuthError, TokenVerifier
from engine.ingest.body_limit import WEBHOOK_PATH
from engine.ingest.client_address import Network, client_address
from engine.ingest.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WINDOW_SECONDS = 60
#: One round trip: count the request, and give the window's key its expiry when it has none (the first hit).
_COUNT = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return n
"""


@dataclass(frozen=True)
class Decision:
    """One request's place in its bucket; ``unavailable`` when Redis could not be asked."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    unavailable: bool = False

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.reset_seconds).encode()))
        return out


class RateLimiter:
    """Fixed-window counters in Redis (at ``redis_url``; ``None``: no Redis) under ``{prefix}rl:{bucket}:{window}``.

    The asyncio client is made on first use by the running event loop (and again for another loop: a test
    client runs one per app), since its connections belong to a loop.
    """

    def __init__(self, redis_url: str | None, prefix: str) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._loop: asyncio.AbstractEventLoop | None = None
        self._count: Any = None

    async def check(self, bucket: str, limit: int, now: float | None = None) -> Decision:
        """Count one request in ``bucket`` against ``limit`` a minute.  Never raises: a Redis error is a decision
        with ``unavailable`` set (and ``allowed``, which the caller may overrule)."""
        t = now if now is not None else time.time()
        reset = max(1, WINDOW_SECONDS - int(t % WINDOW_SECONDS))
        if self._url is None:
            return Decision(True, limit, limit, reset, unavailable=True)
        key = f"{self._prefix}rl:{bucket}:{int(t // WINDOW_SECONDS)}"
        try:
            count = int(await self._script()(keys=[key], args=[WINDOW_SECONDS + 1]))
        except redis.RedisError:
            return Decision(True, limit, limit, reset, unavailable=True)
        return Decision(count <= limit, limit, max(0, limit - count), reset)

    def _script(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            from engine.adapters.redis_client import make_async_redis

            assert self._url is not None
            self._count = make_async_redis(self._url).register_script(_COUNT)
            self._loop = loop
        return self._count


@dataclass(frozen=True)
class Limits:
    per_minute: int
    webhook_per_minute: int
    fail_open: bool
    trusted_proxies: tuple[Network, ...]


class RateLimitMiddleware:
    """Pure ASGI middleware applying :class:`Limits` to POST requests (reads are never limited).

    It verifies the bearer token to find the subject and leaves the principal in the request's state, so that
    :func:`engine.ingest.security.authenticate` does not verify it a second time.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter, limits: Limits, verifier: TokenVerifier) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        bucket, limit = self._bucket(scope)
        if limit <= 0:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.check(bucket, limit)
        if decision.unavailable:
            from engine.runtime import metrics

            metrics.RATE_LIMITER_UNAVAILABLE.inc()
            if not self.limits.fail_open:
                error = ApiError(503, "rate_limiter_unavailable", "The rate limiter is unavailable; retry shortly.")
                await _answer(error, send, [(b"retry-after", b"5")])
                return
            await self.app(scope, receive, send)
            return
        if not decision.allowed:
            error = ApiError(429, "rate_limited", "Too many requests from this client; slow down.")
            await _answer(error, send, decision.headers())
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *decision.headers()]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _bucket(self, scope: Scope) -> tuple[str, int]:
        if scope["path"] == WEBHOOK_PATH:
            return "webhook", self.limits.webhook_per_minute
        token = _bearer(scope)
        if token:
            try:
                principal = self.verifier.verify(token)
            except AuthError:
                pass  # answered 401 by the route; counted by address meanwhile
            else:
                scope.setdefault("state", {})["principal"] = principal
                return f"sub:{principal.client}", self.limits.per_minute
        return f"ip:{client_address(scope, self.limits.trusted_proxies)}", self.limits.per_minute


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


async def _answer(error: ApiError, send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    response = error.response()
    response.raw_headers.extend(headers)
    await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
