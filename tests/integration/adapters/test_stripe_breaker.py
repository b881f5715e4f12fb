"""The Stripe gateway and its circuit breaker against the sandbox: while open no call goes out; half-open exactly
one HTTP request goes out (the probe, without the SDK's network retries), whatever the stage calls next."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from engine.adapters.circuit_breaker import CircuitBreaker
from engine.adapters.stripe_gateway import StripeGateway
from engine.errors import DependencyDown
from tests.integration.broker.helpers import wait_until

pytestmark = pytest.mark.integration


def _requests(stripe_sim: Any) -> int:
    return int(httpx.get(f"{stripe_sim.base_url}/_sim/stats").json()["requests"])


def _down(stripe_sim: Any, down: bool) -> None:
    assert httpx.post(f"{stripe_sim.base_url}/_sim/config", json={"down": down}).status_code == 200


def test_open_breaker_makes_no_call_and_half_open_makes_one_request(stripe_sim: Any) -> None:
    now = [0.0]
    breaker = CircuitBreaker("stripe", dependency_failures=2, open_seconds=5, clock=lambda: now[0])
    # The SDK would retry a dropped connection twice: three requests per call when closed.
    gateway = StripeGateway("sk_test_breaker", stripe_sim.base_url, max_network_retries=2, breaker=breaker)
    _down(stripe_sim, True)
    for _ in range(2):
        with pytest.raises(stripe.APIConnectionError):
            gateway.find_intent("job_a", "cus_a")
    assert breaker.state == "open"

    before = _requests(stripe_sim)
    for _ in range(5):  # a stage's lookup, search and create: none goes out
        with pytest.raises(DependencyDown):
            gateway.find_intent("job_a", "cus_a")
    assert _requests(stripe_sim) == before

    now[0] += 5
    assert breaker.admits() == "probe"
    with pytest.raises(stripe.APIConnectionError):
        gateway.find_intent("job_a", "cus_a")  # the probe: one request, no SDK retries
    assert _requests(stripe_sim) == before + 1
    assert breaker.state == "open"
    with pytest.raises(DependencyDown):
        gateway.create_and_confirm(
            "job_a", amount=100, currency="eur", customer="cus_a", payment_method="pm_card_visa", idempotency_key="k"
        )
    assert _requests(stripe_sim) == before + 1

    _down(stripe_sim, False)
    now[0] += 10
    assert gateway.find_intent("job_a", None, None) is None  # the probe succeeds: closed again
    assert breaker.state == "closed" and breaker.admits() == "all"


def test_the_work_gate_probes_stripe_itself_and_opens_when_it_answers(stripe_sim: Any) -> None:
    now = [0.0]
    breaker = CircuitBreaker("stripe", dependency_failures=1, open_seconds=5, clock=lambda: now[0])
    gateway = StripeGateway("sk_test_breaker", stripe_sim.base_url, max_network_retries=2, breaker=breaker)
    assert gateway.work_gate() == "all"
    _down(stripe_sim, True)
    with pytest.raises(stripe.APIConnectionError):
        gateway.find_intent("job_a", None)
    before = _requests(stripe_sim)
    assert gateway.work_gate() == "none"  # open: no probe yet
    now[0] += 5
    assert gateway.work_gate() == "none"  # half-open: the gateway probes, in the background
    assert wait_until(lambda: breaker.state == "open", timeout=5)  # the probe failed: one request
    assert _requests(stripe_sim) == before + 1
    _down(stripe_sim, False)
    now[0] += 5
    assert gateway.work_gate() == "none"
    assert wait_until(lambda: gateway.work_gate() == "all", timeout=5)


def test_a_card_country_lookup_during_an_outage_is_not_remembered(stripe_sim: Any) -> None:
    gateway = StripeGateway("sk_test_breaker", stripe_sim.base_url, max_network_retries=0)
    _down(stripe_sim, True)
    assert gateway.card_country("pm_card_visa") is None
    _down(stripe_sim, False)
    assert gateway.card_country("pm_card_visa") == "US"
    _down(stripe_sim, True)
    assert gateway.card_country("pm_card_visa") == "US"  # remembered once Stripe answered
