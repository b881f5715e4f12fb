"""The local SQS/S3 endpoint: moto's server on 127.0.0.1, multi-threaded, with the SQS fast path applied.

One endpoint serves both services (moto dispatches on the request's signing service).  Requests are handled on
a thread each (werkzeug ``threaded=True``), so a 20-second long poll never holds up other clients.  moto's
state is per process: two servers started in one process share their queues and buckets.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from engine.errors import PaymentsError
from sandbox.embedded import moto_fastpath
from sandbox.ports import wait_for_port

logger = logging.getLogger(__name__)


class LocalAwsError(PaymentsError):
    """The local AWS endpoint could not be started (port taken, moto unsupported, …)."""


class LocalAwsServer:
    """moto's SQS/S3 server in a background thread.

    ``port=0`` picks a free port.  :meth:`start` returns the endpoint URL (``http://127.0.0.1:PORT``);
    :meth:`stop` shuts the listener down.  ``fastpath`` applies :mod:`sandbox.embedded.moto_fastpath` (on by
    default; it refuses an unsupported moto version rather than run slow silently).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 4566, fastpath: bool = True) -> None:
        self.host = host
        self.port = port
        self.fastpath = fastpath
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str | None:
        """The endpoint URL while running, else ``None``."""
        return self._url

    def start(self) -> str:
        """Bind, start serving in a daemon thread and return the URL (idempotent while running).

        Raises:
            LocalAwsError: the port is taken or cannot be bound.
            moto_fastpath.UnsupportedMotoVersion: ``fastpath`` is on and moto is not a supported version.
        """
        if self._url is not None:
            return self._url
        if self.fastpath:
            moto_fastpath.apply(strict=True)
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            # werkzeug logs every request at INFO on stderr; the worker's polling would flood the terminal.
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                return None

        app = DomainDispatcherApplication(create_backend_app)
        try:
            # Bound here, in the caller's thread, so a taken port raises instead of hanging (moto's own
            # ThreadedMotoServer binds in its thread and then waits forever for a "ready" that never comes).
            self._server = make_server(self.host, self.port, app, threaded=True, request_handler=QuietHandler)
        except (OSError, SystemExit) as exc:
            raise LocalAwsError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        host, port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        wait_for_port(host, port, timeout=10)
        self._url = f"http://{host}:{port}"
        logger.info("local AWS endpoint (SQS, S3) at %s", self._url)
        return self._url

    def stop(self) -> None:
        """Stop listening and wait for the serving thread; no-op when not running."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        self._url = None
