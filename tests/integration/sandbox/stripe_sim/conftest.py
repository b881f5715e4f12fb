"""Fixtures: one Stripe sandbox per test process on a free port, reset before every test, and SDK clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from sandbox.stripe_sim import StripeSandbox

API_KEY = "sk_test_sandbox_tests"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[StripeSandbox]:
    sb = StripeSandbox(port=0)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture(autouse=True)
def _clean(sandbox: StripeSandbox) -> Iterator[None]:
    sandbox.reset()
    yield
    sandbox.reset()


@pytest.fixture
def base_url(sandbox: StripeSandbox) -> str:
    return sandbox.base_url


@pytest.fixture
def client(base_url: str) -> stripe.StripeClient:
    """The official SDK pointed at the sandbox, with no network retries (each test sees every answer)."""
    return stripe.StripeClient(api_key=API_KEY, base_addresses={"api": base_url}, max_network_retries=0)


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    """A raw HTTP client with the API key, for headers the SDK does not surface."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as c:
        yield c


def sim_config(http: httpx.Client, **knobs: Any) -> dict[str, Any]:
    response = http.post("/_sim/config", json=knobs)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


class Receiver:
    """A tiny webhook receiver: records each POST; answers ``fail_first`` times with 500, then 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append((body, {k.lower(): v for k, v in self.headers.items()}))
                    failing = receiver.fail_first > 0
                    if failing:
                        receiver.fail_first -= 1
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for body, _ in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
