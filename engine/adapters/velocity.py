"""Velocity counters for the fraud rules: how many events a key had in the last N seconds.

:class:`RedisVelocityCounter` keeps a **sliding window** per key in a Redis sorted set (member = one event,
score = its time in milliseconds).  One Lua script trims the events older than the window, adds this one, counts
and sets the key's expiry, atomically, with the time taken from the Redis server so that workers with skewed
clocks share one timeline.  A sliding window has no burst at a window edge: a fixed INCR+EXPIRE window would let
2 × limit payments through across a minute boundary.  Memory is one set entry per event in the window, which is
small at the default limit (10 a minute per customer).

Keys are ``{prefix}velocity:{key}``: the prefix is ``PAYMENTS_REDIS_PREFIX`` (engine.adapters.redis_client), so two
stacks sharing one Redis never see each other's counters.

``hit`` takes an optional ``member``: the same member counts once per window, which lets a caller make a retried
stage idempotent (pass the job id).  Without it every call is a new event.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["MemoryVelocityCounter", "RedisVelocityCounter"]

# KEYS[1] = the sorted set; ARGV[1] = window in ms; ARGV[2] = member.
_HIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], 'NX', now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], window)
return redis.call('ZCARD', KEYS[1])
"""


def _check_window(window_seconds: int) -> int:
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int) or window_seconds < 1:
        raise ValueError(f"window_seconds must be a positive int, got {window_seconds!r}")
    return window_seconds * 1000


class RedisVelocityCounter:
    """A :class:`~engine.domain.fraud.VelocityCounter` on Redis (sliding window, see the module docstring).

    ``redis_client`` is a ``redis.Redis``; ``prefix`` the namespace put before every key.  ``hit`` raises
    ``redis.RedisError`` when Redis cannot be reached (the fraud stage treats that as a transient error).
    """

    def __init__(self, redis_client: Any, prefix: str) -> None:
        self._redis = redis_client
        self._prefix = prefix
        self._script = redis_client.register_script(_HIT_SCRIPT)

    def key(self, key: str) -> str:
        """The Redis key that holds ``key``'s window."""
        return f"{self._prefix}velocity:{key}"

    def hit(self, key: str, window_seconds: int, member: str | None = None) -> int:
        """Record an event for ``key`` and return the events in the last ``window_seconds``, this one included.

        Raises :class:`ValueError` for a window below one second.
        """
        window_ms = _check_window(window_seconds)
        return int(self._script(keys=[self.key(key)], args=[window_ms, member or uuid.uuid4().hex]))


class MemoryVelocityCounter:
    """The same sliding window in process memory, for tests and single-process tools.  ``clock`` returns seconds
    (default :func:`time.monotonic`), so a test can move time by hand."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._events: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, window_seconds: int, member: str | None = None) -> int:
        """Record an event for ``key`` and return the events in the last ``window_seconds``, this one included.

        Raises :class:`ValueError` for a window below one second.
        """
        _check_window(window_seconds)
        with self._lock:
            now = self._clock()
            events = self._events.setdefault(key, {})
            horizon = now - window_seconds
            for m in [m for m, at in events.items() if at <= horizon]:
                del events[m]
            events.setdefault(member or uuid.uuid4().hex, now)
            return len(events)
