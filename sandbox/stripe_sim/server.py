"""``StripeSandbox``: the sandbox as an object that starts in a background thread or serves in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.stripe_sim.app import SandboxApp
from sandbox.stripe_sim.clock import Clock
from sandbox.stripe_sim.faults import Faults
from sandbox.stripe_sim.http import HttpServer
from sandbox.stripe_sim.idempotency import IdempotencyStore
from sandbox.stripe_sim.store import Store
from sandbox.stripe_sim.webhooks import WebhookDispatcher

__all__ = ["StripeSandbox"]


class StripeSandbox:
    """A local Stripe-compatible server.

    ``port=0`` picks a free port.  ``state_file`` (SQLite) keeps objects and saved idempotent answers across
    restarts; without it everything lives in memory.  ``knobs`` are applied as by ``POST /_sim/config``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 12111,
        state_file: str | Path | None = None,
        knobs: dict[str, Any] | None = None,
        webhook_workers: int = 2,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = Clock()
        self.faults = Faults()
        if knobs:
            self.faults.merge(knobs)
        self.store = Store(state_file)
        self.idempotency = IdempotencyStore(self.clock)
        self.store.attach_idempotency(self.idempotency)
        self.dispatcher = WebhookDispatcher(self.store, self.faults, workers=webhook_workers)
        self.app = SandboxApp(self.store, self.faults, self.clock, self.idempotency, self.dispatcher)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: HttpServer | None = None
        self._stopped = threading.Event()

    @property
    def base_url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        return f"http://{self.host}:{self.port}"

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(1024)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    def start(self) -> str:
        """Bind, start serving in a background thread and return the base URL.

        Raises OSError when the port cannot be bound.
        """
        if self._thread is not None:
            return self.base_url
        sock = self._bind()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = HttpServer(self.app.handle, sock)
                loop.run_until_complete(self._server.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._server.close())
                loop.close()
                self._stopped.set()

        self.dispatcher.start()
        self._thread = threading.Thread(target=run, name="stripe-sandbox", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.base_url

    def stop(self) -> None:
        """Stop serving, stop webhook delivery and close the state file (idempotent)."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self.dispatcher.stop()
        self.store.close()

    def serve_forever(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM (the CLI)."""
        self.start()
        stop = threading.Event()
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until no webhook delivery is queued or running; True if that happened within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dispatcher.idle():
                return True
            time.sleep(0.01)
        return self.dispatcher.idle()

    def configure(self, **knobs: Any) -> None:
        """Merge knobs, as ``POST /_sim/config`` does."""
        self.faults.merge(knobs)

    def reset(self) -> None:
        """As ``POST /_sim/reset``."""
        self.app.reset()

    def __enter__(self) -> StripeSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
