"""The sandbox's request limits: token buckets per API key and per key and endpoint."""

from __future__ import annotations

from sandbox.stripe_sim.rate_limits import RateLimits, endpoint_of


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_endpoints_name_the_method_and_path_without_object_ids() -> None:
    assert endpoint_of("POST", "/v1/payment_intents") == "POST /v1/payment_intents"
    assert endpoint_of("POST", "/v1/payment_intents/pi_123/confirm") == "POST /v1/payment_intents/{id}/confirm"
    assert endpoint_of("GET", "/v1/payment_intents/pi_123") == "GET /v1/payment_intents/{id}"
    assert endpoint_of("GET", "/v1/payment_intents/search") == "GET /v1/payment_intents/search"


def test_a_second_of_burst_then_the_rate_per_key_and_endpoint() -> None:
    clock = Clock()
    limits = RateLimits(clock)
    admitted = [limits.admit("sk_a", "POST /v1/x", 100, 5) for _ in range(8)]
    assert admitted == [True] * 5 + [False] * 3
    assert limits.admit("sk_a", "GET /v1/y", 100, 5)  # another endpoint
    assert limits.admit("sk_b", "POST /v1/x", 100, 5)  # another account
    clock.now += 0.2
    assert limits.admit("sk_a", "POST /v1/x", 100, 5) and not limits.admit("sk_a", "POST /v1/x", 100, 5)
    assert all(limits.admit("sk_c", f"GET /v1/{i}", 3, 0) for i in range(3))
    assert not limits.admit("sk_c", "GET /v1/other", 3, 0)  # the account's limit spans endpoints
