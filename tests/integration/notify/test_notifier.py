"""The notifier delivers each event once, signed, even when two copies race."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from engine.adapters.notifier import Notifier, sign


class Merchant:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.gate = threading.Event()
        self.gate.set()
        merchant = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                merchant.gate.wait(5)
                merchant.received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def merchant() -> Iterator[Merchant]:
    m = Merchant()
    yield m
    m.server.shutdown()


def test_signed_delivery_once(merchant: Merchant, redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    notifier = Notifier(client, redis_prefix, merchant.url, "whsec_merchant")
    job = {"id": "job_1", "object": "job", "status": "succeeded"}
    assert notifier.deliver("job.succeeded", "job_1:job.succeeded", job) is True
    assert notifier.deliver("job.succeeded", "job_1:job.succeeded", job) is False
    assert len(merchant.received) == 1
    headers, body = merchant.received[0]
    t, v1 = (part.split("=", 1)[1] for part in headers["Payments-Signature"].split(","))
    expected = hmac.new(b"whsec_merchant", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert v1 == expected and sign("whsec_merchant", body, int(t)) == headers["Payments-Signature"]
    event = json.loads(body)
    assert event["type"] == "job.succeeded" and event["data"]["object"] == job
    assert headers["Payments-Event-Id"] == "job_1:job.succeeded"


def test_a_racing_copy_waits_for_the_first(merchant: Merchant, redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    first = Notifier(client, redis_prefix, merchant.url, None)
    second = Notifier(client, redis_prefix, merchant.url, None)
    merchant.gate.clear()  # the merchant is slow: the first delivery is in flight
    worker = threading.Thread(target=first.deliver, args=("job.failed", "job_2:job.failed", {"id": "job_2"}))
    worker.start()
    import time

    deadline = time.monotonic() + 5
    while not client.exists(f"{redis_prefix}notifying:job_2:job.failed") and time.monotonic() < deadline:
        time.sleep(0.01)
    # The second copy waits for the first instead of posting again (or burning a receive on a retry).
    threading.Timer(0.5, merchant.gate.set).start()
    assert second.deliver("job.failed", "job_2:job.failed", {"id": "job_2"}) is False
    worker.join(5)
    assert len(merchant.received) == 1


def test_a_failed_delivery_releases_the_claim(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    notifier = Notifier(client, redis_prefix, "http://127.0.0.1:9/nowhere", None, timeout=0.5)
    with pytest.raises(Exception):  # noqa: B017 - any transport error
        notifier.deliver("job.succeeded", "job_3:job.succeeded", {"id": "job_3"})
    assert not client.exists(f"{redis_prefix}notifying:job_3:job.succeeded")
    assert not notifier.already_delivered("job_3:job.succeeded")
