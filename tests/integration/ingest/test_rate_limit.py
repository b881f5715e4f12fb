"""POST requests are limited per client IP (429 rate_limited with Retry-After); reads never are."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.ingest.app import create_app
from engine.runtime.container import Container
from engine.runtime.endpoints import resolve_endpoints


def test_posts_over_the_limit_get_429_reads_do_not(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    limited = engine_settings.model_copy(update={"rate_limit_per_minute": 3})
    api = TestClient(create_app(Container(settings=limited, endpoints=resolve_endpoints(limited))))
    headers = {"Authorization": f"Bearer {mint(limited, 'operator')}"}
    codes = [api.post("/v1/payments", json={}, headers=headers).status_code for _ in range(4)]
    assert codes[:3] == [400, 400, 400]  # counted, then refused for the missing key
    assert codes[3] == 429
    refused = api.post("/v1/payments", json={}, headers=headers)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert all(api.get("/v1/jobs", headers=headers).status_code == 200 for _ in range(10))


def test_zero_turns_the_limit_off(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    off = engine_settings.model_copy(update={"rate_limit_per_minute": 0})
    api = TestClient(create_app(Container(settings=off, endpoints=resolve_endpoints(off))))
    headers = {"Authorization": f"Bearer {mint(off, 'operator')}"}
    assert {api.post("/v1/payments", json={}, headers=headers).status_code for _ in range(20)} == {400}
