"""Stripe's request limits, respected across the fleet: token buckets shared through Redis.

Stripe limits each account (live mode: 100 operations/s) and each endpoint (25 requests/s).  Fifty workers on
ECS that each respect a local limit still add up to a 429 storm, so the buckets live in Redis: one per account and
one per account and endpoint, refilled continuously at their rate and holding at most ``burst_seconds`` of it.
Before each Stripe call a worker takes one token from both buckets at once (a Lua script, so the check and the
take are atomic, on Redis's clock so that hosts need not agree on time) or learns how long to wait for them.

The account is named by a digest of the API key (a key belongs to one account; the key itself never reaches
Redis); the endpoint by the gateway's operation name (``payment_intents.create``).  When Redis fails the limiter
lets the call through (logged): Stripe's own 429s are then retried by the stage like any other.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from engine.errors import TransientError

log = logging.getLogger(__name__)

#: KEYS: the account bucket, the endpoint bucket.  ARGV: account rate, endpoint rate (tokens/s; 0 = no limit),
#: burst seconds.  Each bucket is a hash {tokens, at} (at: Redis time in µs).  Returns 0 when a token of each was
#: taken, else the µs to wait before both have one (nothing taken).
_TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local burst = tonumber(ARGV[3])
local state = {}
local wait = 0
for i = 1, 2 do
  local rate = tonumber(ARGV[i])
  if rate > 0 then
    local capacity = math.max(1, rate * burst)
    local h = redis.call('HMGET', KEYS[i], 'tokens', 'at')
    local tokens = tonumber(h[1]) or capacity
    local at = tonumber(h[2]) or now
    tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000000)
    state[i] = {tokens, rate, capacity}
    if tokens < 1 then
      wait = math.max(wait, math.ceil((1 - tokens) * 1000000 / rate))
    end
  end
end
if wait > 0 then
  return wait
end
for i = 1, 2 do
  if state[i] then
    redis.call('HSET', KEYS[i], 'tokens', state[i][1] - 1, 'at', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(state[i][3] / state[i][2] * 1000) + 1000)
  end
end
return 0
"""


class RateLimitWaitExceeded(TransientError):
    """No token came within the wait allowed (the gateway turns this into ``DependencyDown``)."""


@dataclass
class StripeRateLimiter:
    """Shared token buckets for one Stripe account.  Thread-safe; one per gateway.

    ``per_account`` and ``per_endpoint`` are requests per second (0 turns that limit off); ``burst_seconds`` is how
    much of a second's worth a bucket holds (a burst after a quiet spell).
    """

    redis_client: redis.Redis
    api_key: str
    prefix: str = ""
    per_account: float = 100.0
    per_endpoint: float = 25.0
    burst_seconds: float = 0.5
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.per_account < 0 or self.per_endpoint < 0 or self.burst_seconds <= 0:
            raise ValueError("rates must be >= 0 and burst_seconds > 0")
        account = hashlib.sha256(self.api_key.encode()).hexdigest()[:16]
        self._base = f"{self.prefix}stripe_rate:{account}"
        self._script: Any = self.redis_client.register_script(_TAKE_SCRIPT)
        self._warned = threading.Event()

    @property
    def enabled(self) -> bool:
        return self.per_account > 0 or self.per_endpoint > 0

    def try_take(self, endpoint: str) -> float:
        """Take one token of the account's and ``endpoint``'s buckets if both have one: 0.0; else the seconds to
        wait before trying again (nothing taken).  Raises :class:`redis.RedisError`."""
        keys = [self._base, f"{self._base}:{endpoint}"]
        args = [self.per_account, self.per_endpoint, self.burst_seconds]
        return int(self._script(keys=keys, args=args)) / 1_000_000

    def acquire(self, endpoint: str, max_wait: float = 30.0) -> float:
        """Wait until a call to ``endpoint`` may go out, then take its tokens; returns the seconds waited.

        Raises :class:`RateLimitWaitExceeded` when that would take longer than ``max_wait``.  Redis failing lets
        the call through.
        """
        if not self.enabled:
            return 0.0
        waited = 0.0
        while True:
            try:
                wait = self.try_take(endpoint)
            except redis.RedisError:
                if not self._warned.is_set():
                    self._warned.set()
                    log.warning("Stripe rate limiter: Redis failed; calls go out unlimited", exc_info=True)
                return waited
            if wait <= 0:
                return waited
            if waited + wait > max_wait:
                raise RateLimitWaitExceeded(f"no Stripe token for {endpoint} within {max_wait:.0f}s")
            # A little jitter so that waiting workers do not all ask again at the same instant.
            pause = wait + random.uniform(0, wait / 4)
            self.sleep(pause)
            waited += pause
