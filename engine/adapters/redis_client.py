"""Redis connections and the key namespace that keeps two stacks (or test runs) sharing one Redis apart."""

from __future__ import annotations

import hashlib

import redis
import redis.asyncio

from config.settings import Settings


def redis_prefix(settings: Settings) -> str:
    """``PAYMENTS_REDIS_PREFIX`` if set, else one derived from the data directory (stable per checkout)."""
    if settings.redis.prefix is not None:
        return settings.redis.prefix
    digest = hashlib.sha256(str(settings.data_dir).encode()).hexdigest()[:10]
    return f"payments:{digest}:"


def make_redis(url: str) -> redis.Redis:
    """A client for ``url`` with short timeouts: Redis is a helper here, never worth hanging a request for."""
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30)


def make_async_redis(url: str) -> redis.asyncio.Redis:
    """An asyncio client for ``url`` with :func:`make_redis`'s timeouts, for calls made on the event loop.  Its
    connections belong to the loop that first uses them."""
    return redis.asyncio.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30)
