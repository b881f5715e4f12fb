"""An ingest app on this test's real services, and tokens for it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

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
