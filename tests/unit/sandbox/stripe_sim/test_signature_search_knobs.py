"""Webhook signatures, the search query language, fault knobs and the test card table."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import stripe

from sandbox.stripe_sim.errors import StripeError
from sandbox.stripe_sim.faults import Faults, KnobError
from sandbox.stripe_sim.search import compile_query
from sandbox.stripe_sim.test_methods import TEST_CARDS, decline_error_fields, find_test_card
from sandbox.stripe_sim.webhooks import compute_signature, endpoint_wants, signature_header


def test_signature_is_hmac_sha256_of_timestamp_dot_payload() -> None:
    payload = '{"id": "evt_1"}'
    expected = hmac.new(b"whsec_x", b"1700000000." + payload.encode(), hashlib.sha256).hexdigest()
    assert compute_signature(payload, "whsec_x", 1700000000) == expected
    assert signature_header(payload, "whsec_x", 1700000000) == f"t=1700000000,v1={expected}"


def test_sdk_verifies_the_header() -> None:
    payload = '{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {}}}'
    header = signature_header(payload, "whsec_abc")
    assert stripe.WebhookSignature.verify_header(payload, header, "whsec_abc")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other")
    old = signature_header(payload, "whsec_abc", int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, old, "whsec_abc", tolerance=300)


def test_endpoint_subscription() -> None:
    assert endpoint_wants({"status": "enabled", "enabled_events": ["*"]}, "charge.refunded")
    assert endpoint_wants({"status": "enabled", "enabled_events": ["charge.refunded"]}, "charge.refunded")
    assert not endpoint_wants({"status": "enabled", "enabled_events": ["charge.refunded"]}, "charge.succeeded")
    assert not endpoint_wants({"status": "disabled", "enabled_events": ["*"]}, "charge.refunded")


FIELDS = frozenset({"amount", "status", "customer", "currency", "created"})
A = {"amount": 500, "status": "succeeded", "customer": "cus_1", "currency": "eur", "metadata": {"job_id": "j1"}}
B = {"amount": 100, "status": "canceled", "customer": None, "currency": "usd", "metadata": {"job_id": "j2"}}


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        ("metadata['job_id']:'j1'", [True, False]),
        ('metadata["job_id"]:"j2"', [False, True]),
        ("status:'succeeded' AND amount>200", [True, False]),
        ("status:'succeeded' OR currency:'usd'", [True, True]),
        ("-status:'canceled'", [True, False]),
        ("customer:null", [False, True]),
        ("amount>=100 AND amount<=100", [False, True]),
        ("metadata['job_id']~'j'", [True, True]),
    ],
)
def test_search_queries(query: str, matches: list[bool]) -> None:
    predicate = compile_query(query, FIELDS)
    assert [predicate(A), predicate(B)] == matches


@pytest.mark.parametrize("query", ["", "status", "nope:'x'", "a:'1' AND status:'x' OR status:'y'", "amount>'x'"])
def test_bad_queries_are_400(query: str) -> None:
    with pytest.raises(StripeError) as info:
        compile_query(query, FIELDS)
    assert info.value.param == "query"


def test_knobs_merge_and_validate() -> None:
    faults = Faults()
    faults.merge({"fail_rate_500": 0.5, "fail_payment_methods": ["pm_card_visa"]})
    faults.merge({"latency_ms": 10})
    assert faults.knobs.fail_rate_500 == 0.5 and faults.knobs.latency_ms == 10
    assert faults.fails("pm_x", "pm_card_visa") and not faults.fails("pm_card_amex", None)
    for bad in (
        {"fail_rate_500": 1.5},
        {"drop_rate": "x"},
        {"down": "yes"},
        {"unknown": 1},
        {"decline_payment_methods": ["a"]},
        {"latency_ms": -1},
    ):
        with pytest.raises(KnobError):
            faults.merge(bad)
    # A failed merge changes nothing.
    with pytest.raises(KnobError):
        faults.merge({"latency_ms": 20, "fail_rate_429": 7})
    assert faults.knobs.latency_ms == 10
    faults.reset()
    assert faults.knobs.fail_rate_500 == 0 and not faults.fails("pm_card_visa")


def test_rates_and_latency_draws() -> None:
    faults = Faults()
    faults.merge({"seed": 3})
    assert not faults.roll(0.0) and faults.roll(1.0)
    hits = sum(faults.roll(0.25) for _ in range(4000))
    assert 800 < hits < 1200
    faults.merge({"latency_ms": 100, "latency_jitter_ms": 50})
    draws = [faults.latency_seconds() for _ in range(200)]
    assert all(0.1 <= d <= 0.15 for d in draws) and max(draws) > min(draws)


def test_test_card_table() -> None:
    visa = find_test_card("pm_card_visa")
    assert visa is not None and visa.last4 == "4242" and visa.brand == "visa" and visa.behavior == "succeed"
    assert find_test_card("tok_visa") is visa and find_test_card("4242 4242 4242 4242") is visa
    assert find_test_card("pm_card_visa_chargeDeclinedInsufficientFunds") is find_test_card(
        "pm_card_chargeDeclinedInsufficientFunds"
    )
    de = find_test_card("pm_card_de")
    assert de is not None and de.country == "DE"
    assert find_test_card("pm_card_nope") is None
    assert decline_error_fields("expired_card")[0] == "expired_card"
    assert decline_error_fields("insufficient_funds")[0] == "card_declined"
    assert decline_error_fields("whatever")[0] == "card_declined"
    # Every number passes Luhn (they are Stripe's real test numbers).
    for card in TEST_CARDS:
        digits = [int(d) for d in card.number][::-1]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
        assert total % 10 == 0, card.token
