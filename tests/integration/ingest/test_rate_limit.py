"""Rate limits: POSTs per token subject (per address without a token), Stripe webhooks in their own bucket,
RateLimit-* headers, and a Redis outage that is a setting and a metric; reads are never limited."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr

from engine.adapters.auth import mint
from engine.ingest.app import create_app
from engine.runtime.container import Container
from engine.runtime.endpoints import resolve_endpoints


def _api(settings: Any) -> TestClient:
    return TestClient(create_app(Container(settings=settings, endpoints=resolve_endpoints(settings))))


def _bearer(settings: Any, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings, 'operator', sub=sub)}"}


def test_posts_over_the_limit_get_429_reads_do_not(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    limited = engine_settings.model_copy(update={"rate_limit_per_minute": 3})
    api = _api(limited)
    headers = _bearer(limited, "erp")
    answers = [api.post("/v1/payments", json={}, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [400, 400, 400]  # counted, then refused for the missing key
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3" and 1 <= int(answers[0].headers["RateLimit-Reset"]) <= 60
    refused = answers[3]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 and refused.headers["RateLimit-Remaining"] == "0"
    assert all(api.get("/v1/jobs", headers=headers).status_code == 200 for _ in range(10))


def test_each_token_subject_has_its_own_bucket_whatever_address_it_claims(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    limited = engine_settings.model_copy(update={"rate_limit_per_minute": 2})
    api = _api(limited)
    noisy, quiet = _bearer(limited, "noisy-client"), _bearer(limited, "quiet-client")
    spoofed = [
        api.post("/v1/payments", json={}, headers={**noisy, "X-Forwarded-For": f"203.0.113.{i}"}) for i in range(3)
    ]
    assert [a.status_code for a in spoofed] == [400, 400, 429]  # a new address per request does not help
    assert api.post("/v1/payments", json={}, headers=quiet).status_code == 400  # another subject: not limited


def test_one_subject_under_two_merchants_has_two_buckets(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    limited = engine_settings.model_copy(update={"rate_limit_per_minute": 2})
    api = _api(limited)

    def post(merchant: str) -> int:
        token = mint(limited, "operator", sub="erp", merchant=merchant)
        return api.post("/v1/payments", json={}, headers={"Authorization": f"Bearer {token}"}).status_code

    assert [post("acct_noisy") for _ in range(3)] == [400, 400, 429]
    assert post("acct_quiet") == 400  # the same subject name at another merchant: another client, not limited


def test_requests_without_a_token_are_counted_by_the_peer_not_a_forwarded_header(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    limited = engine_settings.model_copy(update={"rate_limit_per_minute": 2})
    api = _api(limited)
    codes = [
        api.post("/v1/payments", json={}, headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(3)
    ]
    assert codes == [401, 401, 429]


def test_stripe_webhooks_have_a_bucket_of_their_own(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    limited = engine_settings.model_copy(update={"rate_limit_per_minute": 1, "rate_limit_webhook_per_minute": 3})
    api = _api(limited)
    # The API bucket of this address is used up...
    assert [api.post("/v1/payments", json={}).status_code for _ in range(2)] == [401, 429]
    # ...and Stripe's deliveries still come in (answered for themselves: no signing secret here), up to their own.
    hook = {"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"}
    codes = [api.post("/webhooks/stripe", content=b"{}", headers=hook).status_code for _ in range(4)]
    assert 429 not in codes[:3] and codes[3] == 429


def _unavailable() -> float:
    return REGISTRY.get_sample_value("payments_rate_limiter_unavailable_total") or 0.0


def test_redis_down_lets_requests_through_by_default_and_counts_it(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    down = engine_settings.model_copy(
        update={
            "rate_limit_per_minute": 1,
            "redis": engine_settings.redis.model_copy(update={"url": SecretStr("redis://127.0.0.1:1/0")}),
        }
    )
    api = _api(down)
    before = _unavailable()
    codes = [api.post("/v1/payments", json={}, headers=_bearer(down, "erp")).status_code for _ in range(3)]
    assert codes == [400, 400, 400]
    assert _unavailable() == before + 3


def test_redis_down_answers_503_when_the_limiter_must_not_fail_open(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    down = engine_settings.model_copy(
        update={
            "rate_limit_fail_open": False,
            "redis": engine_settings.redis.model_copy(update={"url": SecretStr("redis://127.0.0.1:1/0")}),
        }
    )
    r = _api(down).post("/v1/payments", json={}, headers=_bearer(down, "erp"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "rate_limiter_unavailable"
    assert r.headers["Retry-After"] == "5"


def test_zero_turns_the_limit_off(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    off = engine_settings.model_copy(update={"rate_limit_per_minute": 0})
    api = _api(off)
    answers = [api.post("/v1/payments", json={}, headers=_bearer(off, "erp")) for _ in range(20)]
    assert {a.status_code for a in answers} == {400} and "RateLimit-Limit" not in answers[0].headers


def test_the_window_is_counted_in_one_key_that_expires(engine_settings, container) -> None:  # type: ignore[no-untyped-def]
    import time

    limited = engine_settings.model_copy(update={"rate_limit_per_minute": 100})
    api = _api(limited)
    sub = f"ttl-{time.time_ns()}"
    for _ in range(3):
        assert api.post("/v1/payments", json={}, headers=_bearer(limited, sub)).status_code == 400
    keys = list(container.redis.scan_iter(match=f"{container.redis_prefix}rl:sub:{sub}:*"))
    assert len(keys) == 1 and int(container.redis.get(keys[0])) == 3
    assert 0 < container.redis.ttl(keys[0]) <= 61  # the Lua script gave the window's key its expiry
