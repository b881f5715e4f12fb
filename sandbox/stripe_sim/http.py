"""A small asyncio HTTP/1.1 server (h11 for the protocol) that gives the sandbox control over its connections.

The sandbox needs what ASGI servers hide: dropping a connection without an answer (``drop_rate``, ``down``).
h11 handles the protocol (keep-alive, chunked bodies, pipelining rules); requests are served one at a time per
connection, many connections concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

import h11

from sandbox.stripe_sim.app import Response

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)

Handler = Callable[[str, str, dict[str, str], bytes], Awaitable[Response | None]]

_MAX_BODY = 10 * 1024 * 1024
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    402: b"Payment Required",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    413: b"Payload Too Large",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


class HttpServer:
    """Serves ``handler`` on an already bound listening socket."""

    def __init__(self, handler: Handler, sock: socket.socket) -> None:
        self._handler = handler
        self._sock = sock
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start accepting connections."""
        self._server = await asyncio.start_server(self._serve_connection, sock=self._sock, limit=_MAX_BODY)

    async def close(self) -> None:
        """Stop accepting and end every open connection."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._loop(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            request: h11.Request | None = None
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)  # b"" marks EOF; h11 then reports ConnectionClosed
                    continue
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > _MAX_BODY:
                        await self._send(conn, writer, Response(413, b'{"error":{"message":"body too large"}}'))
                        return
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert request is not None
            headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
            try:
                response = await self._handler(
                    request.method.decode("ascii"), request.target.decode("latin-1"), headers, bytes(body)
                )
            except Exception:  # never let a bug kill the server; answer 500 like any API
                log.exception("stripe sandbox handler failed")
                response = Response(500, b'{"error":{"type":"api_error","message":"sandbox failure"}}')
            if response is None:
                # Lose the connection with no answer: the client sees a reset (its outcome is unknown).
                writer.transport.abort()
                return
            await self._send(conn, writer, response)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        headers.append((b"Content-Length", str(len(response.body)).encode()))
        if not any(k.lower() == b"content-type" for k, _ in headers):
            headers.append((b"Content-Type", b"application/json"))
        head = conn.send(
            h11.Response(status_code=response.status, headers=headers, reason=_REASONS.get(response.status, b""))
        )
        data = conn.send(h11.Data(data=response.body))
        end = conn.send(h11.EndOfMessage())
        writer.write(b"".join(part for part in (head, data, end) if part))
        await writer.drain()
