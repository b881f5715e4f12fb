"""Fraud rules (engine.domain.fraud): decisions, scores and reasons, and the rules file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine.adapters.velocity import MemoryVelocityCounter
from engine.domain.fraud import (
    FRAUD_RULES_PATH,
    AmountLimit,
    FraudAssessment,
    FraudInput,
    FraudRules,
    FraudRulesError,
    VelocityCounts,
    assess,
    count_velocity,
    load_fraud_rules,
)


def payment(**kw: object) -> FraudInput:
    args: dict[str, object] = {
        "customer_id": "cus_1",
        "email": "anna@example.com",
        "customer_country": "DE",
        "card_country": "DE",
        "amount": 10000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
    }
    args.update(kw)
    return FraudInput(**args)  # type: ignore[arg-type]


def test_an_ordinary_payment_is_approved_with_no_reasons() -> None:
    assert assess(payment()) == FraudAssessment("approve", 0, ())
    assert assess(payment()).as_dict() == {"decision": "approve", "score": 0, "reasons": []}


@pytest.mark.parametrize("email", ["x@fraud.test", "X@FRAUD.TEST", "a.b@shop.fraud.test", "x@fraud.test."])
def test_blocked_email_domain_declines(email: str) -> None:
    assert assess(payment(email=email)) == FraudAssessment("decline", 100, ("email_domain_blocked",))


@pytest.mark.parametrize("email", ["x@notfraud.test", "fraud.test@example.com", "x@fraud.testing", "", None])
def test_similar_domains_are_not_blocked(email: str | None) -> None:
    assert assess(payment(email=email)).decision == "approve"


def test_blocked_customer_declines() -> None:
    rules = FraudRules(blocked_customer_ids=frozenset({"cus_bad"}))
    assert assess(payment(customer_id="cus_bad"), rules=rules) == FraudAssessment("decline", 100, ("customer_blocked",))
    assert assess(payment(customer_id="cus_good"), rules=rules).decision == "approve"


def test_amount_thresholds_per_currency() -> None:
    assert assess(payment(amount=500_000)).decision == "approve"
    assert assess(payment(amount=500_001)) == FraudAssessment("review", 60, ("amount_over_review_limit",))
    assert assess(payment(amount=5_000_000)).decision == "review"
    assert assess(payment(amount=5_000_001)) == FraudAssessment("decline", 100, ("amount_over_decline_limit",))
    assert assess(payment(amount=500_001, currency="EUR")).decision == "review"
    assert assess(payment(amount=800_001, currency="jpy")).decision == "review"
    assert assess(payment(amount=800_000, currency="jpy")).decision == "approve"
    # A currency without limits has no amount rule.
    assert assess(payment(amount=99_999_999, currency="mxn")).decision == "approve"


def test_customer_velocity_reviews_above_ten_a_minute() -> None:
    assert assess(payment(), VelocityCounts(customer=10)).decision == "approve"
    assert assess(payment(), VelocityCounts(customer=11)) == FraudAssessment("review", 60, ("customer_velocity",))


def test_payment_method_velocity_is_off_by_default_and_configurable() -> None:
    assert assess(payment(), VelocityCounts(payment_method=10_000)).decision == "approve"
    rules = FraudRules(payment_method_velocity_limit=3)
    assert assess(payment(), VelocityCounts(payment_method=3), rules).decision == "approve"
    assert assess(payment(), VelocityCounts(payment_method=4), rules).reasons == ("payment_method_velocity",)


def test_country_mismatch_adds_score_but_never_parks_by_itself() -> None:
    mismatch = assess(payment(card_country="US"))
    assert mismatch == FraudAssessment("approve", 20, ("card_country_mismatch",))
    assert assess(payment(card_country="de", customer_country="DE ")).reasons == ()
    assert assess(payment(card_country=None)).reasons == ()
    # Even at its highest allowed weight the mismatch alone approves.
    assert assess(payment(card_country="US"), rules=FraudRules(country_mismatch_score=99)).decision == "approve"
    both = assess(payment(card_country="US", amount=600_000))
    assert both == FraudAssessment("review", 80, ("amount_over_review_limit", "card_country_mismatch"))


def test_the_most_severe_rule_decides_and_the_score_is_capped() -> None:
    a = assess(payment(email="x@fraud.test", amount=6_000_000, card_country="FR"), VelocityCounts(customer=50))
    assert a.decision == "decline"
    assert a.score == 100
    assert a.reasons == (
        "email_domain_blocked",
        "amount_over_decline_limit",
        "customer_velocity",
        "card_country_mismatch",
    )


def test_assess_is_pure() -> None:
    inp, counts = payment(amount=600_000, card_country="US"), VelocityCounts(customer=12)
    assert len({assess(inp, counts) for _ in range(5)}) == 1


def test_velocity_counter_gives_a_deterministic_review_on_the_eleventh_payment() -> None:
    counter = MemoryVelocityCounter(clock=lambda: 1000.0)
    decisions = [assess(payment(), count_velocity(payment(), counter)).decision for _ in range(11)]
    assert decisions == ["approve"] * 10 + ["review"]
    # Another customer has its own window.
    assert count_velocity(payment(customer_id="cus_2"), counter) == VelocityCounts(customer=1, payment_method=None)


def test_count_velocity_counts_payment_methods_only_when_on() -> None:
    counter = MemoryVelocityCounter(clock=lambda: 0.0)
    rules = FraudRules(payment_method_velocity_limit=2, customer_velocity_limit=None)
    counts = [count_velocity(payment(customer_id=f"c{i}"), counter, rules) for i in range(3)]
    assert [c.payment_method for c in counts] == [1, 2, 3]
    assert all(c.customer is None for c in counts)
    assert assess(payment(), counts[-1], rules).reasons == ("payment_method_velocity",)


def test_rules_are_frozen_and_validated() -> None:
    rules = FraudRules()
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.customer_velocity_limit = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        rules.amount_limits["eur"] = AmountLimit()  # type: ignore[index]
    with pytest.raises(FraudRulesError):
        FraudRules(amount_limits={"eur": AmountLimit(review_above=10, decline_above=5)})
    with pytest.raises(FraudRulesError):
        FraudRules(amount_limits={"xyz": AmountLimit(1, 2)})
    with pytest.raises(FraudRulesError):
        FraudRules(customer_velocity_limit=0)
    with pytest.raises(FraudRulesError):
        FraudRules(customer_velocity_window_seconds=0)
    assert FraudRules(amount_limits={"EUR": AmountLimit(1, 2)}).amount_limits == {"eur": AmountLimit(1, 2)}
    assert FraudRules(blocked_email_domains=frozenset({"@Bad.Example"})).blocked_email_domains == {"bad.example"}


def test_shipped_rules_file_equals_the_documented_defaults() -> None:
    assert load_fraud_rules() == FraudRules()
    assert load_fraud_rules(FRAUD_RULES_PATH).blocked_email_domains == {"fraud.test"}


def test_rules_file_overrides_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"_comment": "x", "customer_velocity_limit": 3, "blocked_customer_ids": ["c9"],
                                "amount_limits": {"usd": {"review_above": 100}}}))  # fmt: skip
    rules = load_fraud_rules(path)
    assert rules.customer_velocity_limit == 3
    assert rules.blocked_customer_ids == {"c9"}
    assert dict(rules.amount_limits) == {"usd": AmountLimit(review_above=100, decline_above=None)}
    assert rules.blocked_email_domains == {"fraud.test"}  # untouched keys keep their defaults
    bad: object
    for bad in ({"velocity": 3}, {"blocked_customer_ids": "c9"}, {"amount_limits": []},
                {"amount_limits": {"eur": 5}}, {"customer_velocity_limit": -1}, []):  # fmt: skip
        path.write_text(json.dumps(bad))
        with pytest.raises(FraudRulesError):
            load_fraud_rules(path)
    path.write_text("{")
    with pytest.raises(FraudRulesError):
        load_fraud_rules(path)
