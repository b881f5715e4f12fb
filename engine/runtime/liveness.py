"""Worker liveness in Redis: each worker process refreshes a key with a short TTL; `/health` counts them."""

from __future__ import annotations

import contextlib
import os
import socket
import threading

import redis

HEARTBEAT_SECONDS = 5.0
TTL_SECONDS = 20


class WorkerHeartbeat:
    """Refreshes ``{prefix}workers:{host}:{pid}`` every few seconds from a daemon thread until stopped."""

    def __init__(self, client: redis.Redis, prefix: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self._client = client
        self._key = f"{prefix}workers:{socket.gethostname()}:{os.getpid()}"
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove the key at once, so `/health` notices a clean shutdown immediately."""
        self._stop.set()
        with contextlib.suppress(redis.RedisError):
            self._client.delete(self._key)

    def _beat(self) -> None:
        # Redis down: /health reports it; the worker keeps working.
        with contextlib.suppress(redis.RedisError):
            self._client.set(self._key, "1", ex=TTL_SECONDS)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._beat()


def live_workers(client: redis.Redis, prefix: str) -> int:
    """How many worker processes beat within the TTL.  Raises :class:`redis.RedisError` if Redis is down."""
    return sum(1 for _ in client.scan_iter(match=f"{prefix}workers:*", count=100))
