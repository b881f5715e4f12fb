"""Per-client-IP limit on POST requests (``PAYMENTS_RATE_LIMIT_PER_MINUTE``, 0 = off), counted in Redis.

A fixed one-minute window per IP: one INCR (plus EXPIRE on the first hit) per request, cheap enough for the hot
path.  Fails open when Redis is unreachable — losing the limiter must not stop payments.
"""

from __future__ import annotations

import time

import redis


class RateLimiter:
    def __init__(self, client: redis.Redis | None, prefix: str, per_minute: int) -> None:
        self._client = client
        self._prefix = prefix
        self._limit = per_minute

    def check(self, ip: str, now: float | None = None) -> int | None:
        """``None`` when the request may go on, else the seconds until the window resets (for Retry-After)."""
        if self._limit <= 0 or self._client is None:
            return None
        t = now if now is not None else time.time()
        window = int(t // 60)
        key = f"{self._prefix}rl:{ip}:{window}"
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, 61, nx=True)
            count = int(pipe.execute()[0])
        except redis.RedisError:
            return None
        if count > self._limit:
            return max(1, 60 - int(t % 60))
        return None
