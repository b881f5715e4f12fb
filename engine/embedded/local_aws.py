"""The local SQS/S3 endpoint: a moto server bound to 127.0.0.1 (placeholder until the fast launcher lands)."""

from __future__ import annotations

from moto.server import ThreadedMotoServer


class LocalAwsServer:
    """A moto server in a background thread.  :meth:`start` returns its URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566) -> None:
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.host = host

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()
