"""Fault knobs make the SDK raise what it raises against Stripe."""

from __future__ import annotations

import time

import httpx
import pytest
import stripe

from tests.integration.sandbox.stripe_sim.conftest import sim_config


def test_429_raises_rate_limit_error(client: stripe.StripeClient, http: httpx.Client) -> None:
    sim_config(http, fail_rate_429=1.0)
    with pytest.raises(stripe.RateLimitError) as info:
        client.v1.customers.create()
    assert info.value.http_status == 429
    raw = http.post("/v1/customers")
    assert raw.status_code == 429 and raw.headers["Stripe-Should-Retry"] == "true"
    sim_config(http, should_retry_429=None)
    assert "Stripe-Should-Retry" not in http.post("/v1/customers").headers
    sim_config(http, should_retry_429=False)
    assert http.post("/v1/customers").headers["Stripe-Should-Retry"] == "false"


def test_sdk_retry_after_injected_500_is_not_a_replay(base_url: str, http: httpx.Client) -> None:
    # Seed 1 draws 0.13 then 0.85: the first attempt fails (0.13 < 0.5), the SDK's retry (same idempotency key,
    # which the SDK adds to POSTs when it may retry) succeeds because an injected 500 is never saved.
    sim_config(http, fail_rate_500=0.5, seed=1)
    retrying = stripe.StripeClient(api_key="sk_test_r", base_addresses={"api": base_url}, max_network_retries=2)
    customer = retrying.v1.customers.create(params={"email": "r@example.com"})
    assert customer.email == "r@example.com"
    assert len(http.get("/_sim/customers").json()["data"]) == 1
    stats = http.get("/_sim/stats").json()
    assert stats["injected_500"] == 1 and stats["requests"] == 2


def test_drop_raises_api_connection_error(client: stripe.StripeClient, http: httpx.Client) -> None:
    sim_config(http, drop_rate=1.0)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create()
    sim_config(http, drop_rate=0.0)
    assert client.v1.customers.create().id.startswith("cus_")


def test_down_refuses_api_but_keeps_control(client: stripe.StripeClient, http: httpx.Client) -> None:
    sim_config(http, down=True)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create()
    assert http.get("/_sim/config").json()["down"] is True
    health = http.get("/_sim/health")
    assert health.status_code == 503 and health.json() == {"ok": False, "down": True}
    sim_config(http, down=False)
    assert client.v1.customers.create().id.startswith("cus_")


def test_bad_or_missing_key_raises_authentication_error(base_url: str, http: httpx.Client) -> None:
    bad = stripe.StripeClient(api_key="sk_live_nope", base_addresses={"api": base_url})
    with pytest.raises(stripe.AuthenticationError) as info:
        bad.v1.customers.create()
    assert info.value.http_status == 401
    missing = httpx.post(f"{base_url}/v1/customers")
    assert missing.status_code == 401 and "did not provide an API key" in missing.json()["error"]["message"]
    basic = httpx.post(f"{base_url}/v1/customers", auth=("sk_test_basic", ""))
    assert basic.status_code == 200


def test_latency_knob_delays_answers(http: httpx.Client) -> None:
    sim_config(http, latency_ms=150)
    start = time.perf_counter()
    assert http.post("/v1/customers").status_code == 200
    assert time.perf_counter() - start >= 0.15
    sim_config(http, latency_ms=0, latency_jitter_ms=20, latency_distribution="exponential")
    assert http.post("/v1/customers").status_code == 200


def test_config_merges_validates_and_resets(http: httpx.Client) -> None:
    sim_config(http, latency_ms=5)
    merged = sim_config(http, fail_rate_500=0.25)
    assert merged["latency_ms"] == 5 and merged["fail_rate_500"] == 0.25
    assert http.post("/_sim/config", json={"fail_rate_500": 2}).status_code == 400
    assert http.post("/_sim/config", json={"nonsense": 1}).status_code == 400
    assert http.post("/_sim/config", content=b"{not json").status_code == 400
    http.post("/v1/customers", headers={"Idempotency-Key": "r1"})
    assert http.post("/_sim/reset").status_code == 200
    assert http.get("/_sim/config").json()["fail_rate_500"] == 0
    assert http.get("/_sim/customers").json()["data"] == []


def test_every_answer_has_a_request_id(http: httpx.Client, base_url: str) -> None:
    for response in (
        http.post("/v1/customers"),
        http.get("/v1/nothing"),
        httpx.get(f"{base_url}/v1/customers"),
        http.get("/_sim/health"),
    ):
        assert response.headers["Request-Id"].startswith("req_")
    unknown = http.get("/v1/nothing")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
