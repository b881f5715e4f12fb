"""The conformance validator itself rejects what does not conform (so the conformance tests can fail)."""

from __future__ import annotations

from tests.integration.sandbox.stripe_sim.schema import validate


def _intent() -> dict[str, object]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 100,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "created": 1,
        "currency": "eur",
        "livemode": False,
        "payment_method_types": ["card"],
        "status": "succeeded",
        "metadata": {"job_id": "j"},
        "latest_charge": "ch_1",
        "last_payment_error": None,
        "next_action": None,
    }


def test_a_conforming_object_passes() -> None:
    assert validate(_intent(), "payment_intent") == []


def test_violations_are_reported() -> None:
    bad = _intent()
    del bad["amount"]
    bad["status"] = "paid"
    bad["livemode"] = "no"
    bad["created"] = True
    bad["metadata"] = {"job_id": 5}
    bad["latest_charge"] = 7
    bad["next_action"] = "x"
    errors = validate(bad, "payment_intent")
    for fragment in (
        "missing required 'amount'",
        "'paid' not in",
        "livemode: expected boolean",
        "created: expected integer",
        "metadata.job_id",
        "latest_charge",
        "next_action",
    ):
        assert any(fragment in e for e in errors), fragment


def test_null_only_where_nullable() -> None:
    bad = _intent()
    bad["currency"] = None
    assert validate(bad, "payment_intent") == ["payment_intent.currency: null is not allowed"]


def test_error_bodies() -> None:
    assert validate({"error": {"type": "card_error", "code": "card_declined"}}, "error") == []
    assert validate({"error": {"type": "nope"}}, "error") != []
    assert validate({}, "error") != []
