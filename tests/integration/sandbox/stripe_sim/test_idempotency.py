"""Idempotency keys behave as Stripe documents them (replay, mismatch, in flight, what is saved)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import stripe

from sandbox.stripe_sim import StripeSandbox
from tests.integration.sandbox.stripe_sim.conftest import API_KEY, sim_config

PI = {"amount": "1000", "currency": "eur", "payment_method": "pm_card_visa", "confirm": "true"}


def _count(http: httpx.Client, kind: str = "payment_intents") -> int:
    return len(http.get(f"/_sim/{kind}").json()["data"])


def test_same_key_same_params_replays(client: stripe.StripeClient, http: httpx.Client) -> None:
    options = {"idempotency_key": "job-1:charge:g1"}
    params = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    first = client.v1.payment_intents.create(params=params, options=options)  # type: ignore[arg-type]
    second = client.v1.payment_intents.create(params=params, options=options)  # type: ignore[arg-type]
    assert first.id == second.id and second.status == "succeeded"
    assert _count(http) == 1 and _count(http, "charges") == 1
    raw = http.post("/v1/payment_intents", data=PI, headers={"Idempotency-Key": "job-1:charge:g1"})
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert raw.json()["id"] == first.id
    assert raw.headers["Original-Request"] != raw.headers["Request-Id"]


def test_same_key_other_params_is_idempotency_error(client: stripe.StripeClient, http: httpx.Client) -> None:
    options = {"idempotency_key": "k-mismatch"}
    client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur"}, options=options)  # type: ignore[arg-type]
    with pytest.raises(stripe.IdempotencyError) as info:
        client.v1.payment_intents.create(params={"amount": 1001, "currency": "eur"}, options=options)  # type: ignore[arg-type]
    assert info.value.http_status == 400
    assert info.value.error is not None and info.value.error.type == "idempotency_error"
    # Another endpoint with the same key is another request too.
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(params={}, options=options)  # type: ignore[arg-type]
    assert _count(http) == 1


def _hold_key(http: httpx.Client, base_url: str, key: str, results: list[httpx.Response]) -> threading.Thread:
    """Send a slow request with ``key`` from a thread; return once the sandbox holds the key (in flight)."""
    sim_config(http, latency_ms=500)

    def send() -> None:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10) as c:
            results.append(c.post("/v1/payment_intents", data=PI, headers={"Idempotency-Key": key}))

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 5
    # The request counter moves in the same event-loop step that locks the key, so this is race-free.
    while http.get("/_sim/stats").json()["requests"] < 1:
        assert time.monotonic() < deadline, "the first request never arrived"
        time.sleep(0.005)
    return thread


def test_concurrent_same_key_gets_409(http: httpx.Client, base_url: str) -> None:
    results: list[httpx.Response] = []
    thread = _hold_key(http, base_url, "k-concurrent", results)
    conflict = http.post("/v1/payment_intents", data=PI, headers={"Idempotency-Key": "k-concurrent"})
    thread.join()
    assert conflict.status_code == 409 and results[0].status_code == 200
    assert conflict.json()["error"]["code"] == "idempotency_key_in_use"
    assert conflict.headers["Stripe-Should-Retry"] == "true"
    sim_config(http, latency_ms=0)
    assert _count(http) == 1
    # Once the first answered, the key replays.
    replay = http.post("/v1/payment_intents", data=PI, headers={"Idempotency-Key": "k-concurrent"})
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json()["id"] == results[0].json()["id"]


def test_concurrent_same_key_sdk_raises_api_error(
    client: stripe.StripeClient, http: httpx.Client, base_url: str
) -> None:
    results: list[httpx.Response] = []
    thread = _hold_key(http, base_url, "k-409", results)
    try:
        params = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
        with pytest.raises(stripe.APIError) as info:
            client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-409"})  # type: ignore[arg-type]
        assert info.value.http_status == 409
    finally:
        thread.join()


def test_decline_is_saved_and_replayed(http: httpx.Client) -> None:
    data = {**PI, "payment_method": "pm_card_chargeDeclined"}
    first = http.post("/v1/payment_intents", data=data, headers={"Idempotency-Key": "k-decline"})
    second = http.post("/v1/payment_intents", data=data, headers={"Idempotency-Key": "k-decline"})
    assert first.status_code == second.status_code == 402
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()
    assert _count(http) == 1


def test_validation_failure_is_not_saved(http: httpx.Client) -> None:
    bad = http.post("/v1/payment_intents", data={"currency": "eur"}, headers={"Idempotency-Key": "k-valid"})
    assert bad.status_code == 400
    good = http.post("/v1/payment_intents", data=PI, headers={"Idempotency-Key": "k-valid"})
    assert good.status_code == 200 and "Idempotent-Replayed" not in good.headers


def test_fail_payment_methods_500_is_saved_under_the_key(client: stripe.StripeClient, http: httpx.Client) -> None:
    sim_config(http, fail_payment_methods=["pm_card_visa"])
    params = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    with pytest.raises(stripe.APIError) as info:
        client.v1.payment_intents.create(params=params, options={"idempotency_key": "job-9:charge:g1"})  # type: ignore[arg-type]
    assert info.value.http_status == 500
    assert _count(http) == 0  # nothing was charged
    # Other payment methods are unaffected (the fault is job-specific).
    other = {**params, "payment_method": "pm_card_amex"}
    assert client.v1.payment_intents.create(params=other).status == "succeeded"  # type: ignore[arg-type]
    sim_config(http, fail_payment_methods=[])
    replay = http.post("/v1/payment_intents", data=PI, headers={"Idempotency-Key": "job-9:charge:g1"})
    assert replay.status_code == 500 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["Stripe-Should-Retry"] == "false"
    # A new key generation goes through.
    fresh = client.v1.payment_intents.create(params=params, options={"idempotency_key": "job-9:charge:g2"})  # type: ignore[arg-type]
    assert fresh.status == "succeeded"


def test_fail_rate_500_is_not_saved(client: stripe.StripeClient, http: httpx.Client) -> None:
    sim_config(http, fail_rate_500=1.0)
    params = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    with pytest.raises(stripe.APIError) as info:
        client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-500"})  # type: ignore[arg-type]
    assert info.value.http_status == 500
    sim_config(http, fail_rate_500=0.0)
    intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k-500"})  # type: ignore[arg-type]
    assert intent.status == "succeeded"


def test_key_length_limit(http: httpx.Client) -> None:
    ok = http.post("/v1/customers", headers={"Idempotency-Key": "k" * 255})
    assert ok.status_code == 200
    too_long = http.post("/v1/customers", headers={"Idempotency-Key": "k" * 256})
    assert too_long.status_code == 400 and too_long.json()["error"]["type"] == "invalid_request_error"


def test_keys_expire_after_24_hours(http: httpx.Client, sandbox: StripeSandbox) -> None:
    first = http.post("/v1/customers", data={"email": "a@example.com"}, headers={"Idempotency-Key": "k-ttl"})
    sandbox.clock.advance(23 * 3600)
    mismatch = http.post("/v1/customers", data={"email": "b@example.com"}, headers={"Idempotency-Key": "k-ttl"})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["type"] == "idempotency_error"
    sandbox.clock.advance(3600)
    fresh = http.post("/v1/customers", data={"email": "b@example.com"}, headers={"Idempotency-Key": "k-ttl"})
    assert fresh.status_code == 200 and fresh.json()["id"] != first.json()["id"]


def test_keys_are_scoped_to_the_api_key(base_url: str) -> None:
    a = httpx.post(f"{base_url}/v1/customers", headers={"Authorization": "Bearer sk_test_a", "Idempotency-Key": "s"})
    b = httpx.post(
        f"{base_url}/v1/customers",
        data={"email": "x@example.com"},
        headers={"Authorization": "Bearer sk_test_b", "Idempotency-Key": "s"},
    )
    assert a.status_code == b.status_code == 200 and a.json()["id"] != b.json()["id"]


def test_fail_payment_methods_on_confirm_of_an_existing_intent(client: stripe.StripeClient, http: httpx.Client) -> None:
    intent = client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa"}
    )
    assert intent.status == "requires_confirmation"
    sim_config(http, fail_payment_methods=["pm_card_visa"])
    with pytest.raises(stripe.APIError) as info:
        client.v1.payment_intents.confirm(intent.id, options={"idempotency_key": "confirm-1"})
    assert info.value.http_status == 500
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_confirmation"
    assert http.get("/_sim/charges").json()["data"] == []


def test_answer_lost_after_the_charge_is_replayed_on_retry(client: stripe.StripeClient, http: httpx.Client) -> None:
    sim_config(http, drop_after_rate=1.0)
    params = {
        "amount": 1000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "metadata": {"job_id": "lost"},
    }
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(params=params, options={"idempotency_key": "lost-1"})  # type: ignore[arg-type]
    charged = http.get("/_sim/charges", params={"job_id": "lost", "status": "succeeded"}).json()["data"]
    assert len(charged) == 1  # the charge happened although the client saw only a dropped connection
    sim_config(http, drop_after_rate=0.0)
    intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": "lost-1"})  # type: ignore[arg-type]
    assert intent.latest_charge == charged[0]["id"]
    assert len(http.get("/_sim/charges", params={"job_id": "lost"}).json()["data"]) == 1
    assert http.get("/_sim/stats").json()["dropped_after"] == 1


def test_a_request_still_processed_after_its_connection_dropped_holds_its_key(
    client: stripe.StripeClient, http: httpx.Client
) -> None:
    sim_config(http, drop_in_flight_rate=1.0, in_flight_seconds=1.0)
    params = {"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    params["metadata"] = {"job_id": "in-flight"}
    options = {"idempotency_key": "in-flight-1"}
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.create(params=params, options=options)  # type: ignore[arg-type]
    sim_config(http, drop_in_flight_rate=0.0)
    # Still being processed: the same key answers 409, and nothing is visible yet to a lookup.
    with pytest.raises(stripe.StripeError) as info:
        client.v1.payment_intents.create(params=params, options=options)  # type: ignore[arg-type]
    assert info.value.http_status == 409
    assert http.get("/_sim/payment_intents", params={"job_id": "in-flight"}).json()["data"] == []
    time.sleep(1.5)
    raw = http.post(
        "/v1/payment_intents",
        data={**PI, "metadata[job_id]": "in-flight"},
        headers={"Idempotency-Key": "in-flight-1"},
    )
    assert raw.headers["Idempotent-Replayed"] == "true" and raw.json()["status"] == "succeeded"
    assert len(http.get("/_sim/payment_intents", params={"job_id": "in-flight"}).json()["data"]) == 1
    assert http.get("/_sim/stats").json()["dropped_in_flight"] == 1
