"""A merchant webhook endpoint for e2e tests: a threaded HTTP server on 127.0.0.1 that checks each delivery's
``Payments-Signature`` and records it, so a test can count deliveries per event id.

Each sender may be given its own URL (:meth:`WebhookReceiver.url_for`, a ``sender`` query parameter): a crash
test uses that to tell the one repeat an at-least-once notifier cannot avoid (its worker was killed after the
merchant got the POST and before the delivery was recorded) from a repeat that is a bug.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver accepted: the event's id (header and body agree), type, job and arrival time."""

    event_id: str
    event_type: str
    job_id: str | None
    status: str | None
    at: float
    #: The ``sender`` query parameter of the URL it was posted to (None: the plain URL).
    sender: str | None = None


def signature_ok(secret: str, header: str, body: bytes) -> bool:
    """Whether ``header`` (``t=…,v1=…``) is the HMAC-SHA256 of ``"{t}.{body}"`` under ``secret``."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


class WebhookReceiver:
    """Accepts signed job events at ``url``; refuses (400) and counts anything unsigned or malformed."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self.rejected: list[str] = []
        self.truncated = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (a SIGKILLed worker): an HTTP server drops a truncated request,
                    # it is not a delivery, signed or not.
                    with receiver._lock:
                        receiver.truncated += 1
                    return
                sender = parse_qs(urlsplit(self.path).query).get("sender", [None])[0]
                problem = receiver._check(self.headers.get("Payments-Signature", ""), self.headers, body, sender)
                self.send_response(400 if problem else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest shows failures, not traffic
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/payments"

    def url_for(self, sender: str) -> str:
        """The URL to give one sender, so its deliveries are told apart."""
        return f"{self.url}?{urlencode({'sender': sender})}"

    def _check(self, signature: str, headers: Any, body: bytes, sender: str | None) -> str | None:
        """Record a good delivery and return None, or return (and record) why it was refused."""
        problem: str | None = None
        event: dict[str, Any] = {}
        if not signature_ok(self.secret, signature, body):
            problem = "bad signature"
        else:
            try:
                event = json.loads(body)
            except ValueError:
                problem = "body is not JSON"
        if problem is None and event.get("id") != headers.get("Payments-Event-Id"):
            problem = f"Payments-Event-Id {headers.get('Payments-Event-Id')!r} is not the body's id {event.get('id')!r}"
        with self._lock:
            if problem is not None:
                self.rejected.append(problem)
                return problem
            obj = (event.get("data") or {}).get("object") or {}
            self._deliveries.append(
                Delivery(
                    str(event["id"]), str(event.get("type")), obj.get("id"), obj.get("status"), time.monotonic(), sender
                )
            )
        return None

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def counts(self) -> Counter[str]:
        """Deliveries per event id."""
        return Counter(d.event_id for d in self.deliveries())

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
