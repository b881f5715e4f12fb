"""An ingest app on this test's real services, and tokens for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from engine.adapters.auth import mint


@pytest.fixture
def api(container) -> TestClient:  # type: ignore[no-untyped-def]
    from engine.ingest.app import create_app

    return TestClient(create_app(container))


@pytest.fixture
def token(engine_settings) -> Callable[..., str]:  # type: ignore[no-untyped-def]
    def make(role: str = "operator", sub: str = "upstream-test") -> str:
        return mint(engine_settings, role, sub=sub, ttl_seconds=600)

    return make


@pytest.fixture
def auth(token) -> Callable[..., dict[str, str]]:  # type: ignore[no-untyped-def]
    def headers(role: str = "operator", key: str | None = "key-1", sub: str = "upstream-test") -> dict[str, str]:
        h = {"Authorization": f"Bearer {token(role, sub)}"}
        if key is not None:
            h["Idempotency-Key"] = key
        return h

    return headers


#: The live ingest's Stripe webhook signing secret.
WEBHOOK_SECRET = "whsec_live_ingest_tests"


@dataclass
class LiveIngest:
    """The ingest served by a real uvicorn on a free port of 127.0.0.1 (:func:`live_ingest`)."""

    url: str
    settings: Any

    def token(self, role: str = "admin", sub: str = "upstream-live") -> str:
        return mint(self.settings, role, sub=sub, ttl_seconds=900)


@pytest.fixture
def live_ingest(payment_settings) -> Iterator[LiveIngest]:  # type: ignore[no-untyped-def]
    """The ingest app on this test's real services (Stripe: the sandbox), served over real HTTP by uvicorn in a
    thread, rate limits off (a test client sends hundreds of requests a minute)."""
    import uvicorn

    from engine.adapters.s3 import ensure_buckets
    from engine.broker.queues import provision
    from engine.ingest.app import create_app
    from engine.runtime.container import Container
    from engine.runtime.endpoints import resolve_endpoints
    from sandbox.ports import free_port

    stripe = payment_settings.stripe.model_copy(update={"webhook_secrets": SecretStr(WEBHOOK_SECRET)})
    settings = payment_settings.model_copy(
        update={"rate_limit_per_minute": 0, "rate_limit_webhook_per_minute": 0, "stripe": stripe}
    )
    container = Container(settings=settings, endpoints=resolve_endpoints(settings))
    provision(container.sqs, settings.queue_prefix, container.queues)
    ensure_buckets(container.s3, settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="live-ingest", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live ingest did not start")
        time.sleep(0.05)
    try:
        yield LiveIngest(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
