"""Explainable fraud rules: a payment and its velocity counts in, ``approve`` / ``review`` / ``decline`` out.

Every rule that fires adds a reason (a stable code) and a score weight; the decision is the most severe action
of the rules that fired, and the score is the sum of their weights capped at 100.  So a decision can always be
read back from its reasons:

=================================  ==========  =======  ===========================================
reason                             action      weight   default
=================================  ==========  =======  ===========================================
``customer_blocked``               decline     100      no customer ids blocked
``email_domain_blocked``           decline     100      ``fraud.test`` (and its subdomains)
``amount_over_decline_limit``      decline     100      per currency, e.g. EUR above 50,000.00
``amount_over_review_limit``       review      60       per currency, e.g. EUR above 5,000.00
``customer_velocity``              review      60       more than 10 payments a minute per customer
``payment_method_velocity``        review      60       off (``payment_method_velocity_limit`` null)
``card_country_mismatch``          (none)      20       card country differs from customer country
=================================  ==========  =======  ===========================================

The country mismatch only adds score: it never parks a job by itself (``docs/fraud.md``).
:func:`assess` is pure; :func:`count_velocity` is the one place that touches a :class:`VelocityCounter`.
docs/fraud.md lists deterministic ways to get each decision in tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

from engine.domain.money import UnknownCurrency
from engine.domain.money import currency as _currency
from engine.errors import InvalidInput

__all__ = [
    "FRAUD_RULES_PATH",
    "AmountLimit",
    "Decision",
    "FraudAssessment",
    "FraudInput",
    "FraudRules",
    "FraudRulesError",
    "VelocityCounter",
    "VelocityCounts",
    "assess",
    "count_velocity",
    "load_fraud_rules",
]

Decision = Literal["approve", "review", "decline"]
_SEVERITY: dict[Decision, int] = {"approve": 0, "review": 1, "decline": 2}

FRAUD_RULES_PATH = Path(__file__).resolve().parents[2] / "config" / "fraud_rules.json"


class FraudRulesError(InvalidInput):
    """Fraud rules that cannot be used: malformed file, unknown key, negative limit, review above decline …"""


class VelocityCounter(Protocol):
    """Counts events per key in a time window."""

    def hit(self, key: str, window_seconds: int, member: str | None = None) -> int:
        """Record one event for ``key`` now and return how many events ``key`` had in the last
        ``window_seconds``, this one included.  The same ``member`` (a job id) counts once."""
        ...


@dataclass(frozen=True, slots=True)
class AmountLimit:
    """Amount thresholds of one currency in minor units: review when above ``review_above``, decline when above
    ``decline_above``; None switches that threshold off."""

    review_above: int | None = None
    decline_above: int | None = None


def _default_amount_limits() -> Mapping[str, AmountLimit]:
    # Round figures of about 5,000 / 50,000 EUR in each currency's minor units.
    return MappingProxyType(
        {
            "eur": AmountLimit(500_000, 5_000_000),
            "usd": AmountLimit(500_000, 5_000_000),
            "gbp": AmountLimit(500_000, 5_000_000),
            "chf": AmountLimit(500_000, 5_000_000),
            "sek": AmountLimit(5_000_000, 50_000_000),
            "nok": AmountLimit(5_000_000, 50_000_000),
            "dkk": AmountLimit(4_000_000, 40_000_000),
            "pln": AmountLimit(2_000_000, 20_000_000),
            "czk": AmountLimit(12_500_000, None),  # 50,000 EUR would exceed the 8-digit maximum
            "huf": AmountLimit(50_000_000, None),  # HUF tops out at 999,999.99 (8 digits)
            "ron": AmountLimit(2_500_000, 25_000_000),
            "bgn": AmountLimit(1_000_000, 10_000_000),
            "jpy": AmountLimit(800_000, 8_000_000),
            "kwd": AmountLimit(1_500_000, 15_000_000),
        }
    )


@dataclass(frozen=True, slots=True)
class FraudRules:
    """The fraud rules' settings; the defaults are the documented ones (``config/fraud_rules.json`` holds the
    same values).  Amount limits are keyed by lower-case currency; a currency without an entry has no amount
    rule.  A velocity limit is the most payments allowed in the window: one more is reviewed; None is off."""

    amount_limits: Mapping[str, AmountLimit] = field(default_factory=_default_amount_limits)
    customer_velocity_limit: int | None = 10
    customer_velocity_window_seconds: int = 60
    payment_method_velocity_limit: int | None = None
    payment_method_velocity_window_seconds: int = 60
    country_mismatch_score: int = 20
    review_score: int = 60
    blocked_email_domains: frozenset[str] = frozenset({"fraud.test"})
    blocked_customer_ids: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        limits = {}
        for code, limit in dict(self.amount_limits).items():
            try:
                cur = _currency(code).code
            except UnknownCurrency as exc:
                raise FraudRulesError(f"amount limit for an unsupported currency {code!r}") from exc
            for value in (limit.review_above, limit.decline_above):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                    raise FraudRulesError(f"{cur}: amount limits must be non-negative ints of minor units or null")
            if (
                limit.review_above is not None
                and limit.decline_above is not None
                and limit.review_above > limit.decline_above
            ):
                raise FraudRulesError(f"{cur}: review_above must not exceed decline_above")
            limits[cur] = limit
        object.__setattr__(self, "amount_limits", MappingProxyType(limits))
        for name in ("customer_velocity_limit", "payment_method_velocity_limit"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise FraudRulesError(f"{name} must be a positive int or null (off)")
        for name in ("customer_velocity_window_seconds", "payment_method_velocity_window_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FraudRulesError(f"{name} must be a positive int")
        if not 0 <= self.country_mismatch_score < 100 or not 0 < self.review_score <= 100:
            raise FraudRulesError("scores must lie in 0–100")
        object.__setattr__(
            self, "blocked_email_domains", frozenset(d.strip().lower().lstrip("@") for d in self.blocked_email_domains)
        )
        object.__setattr__(self, "blocked_customer_ids", frozenset(self.blocked_customer_ids))


@dataclass(frozen=True, slots=True)
class FraudInput:
    """What the rules look at.  ``card_country`` is None when unknown (no mismatch is scored then)."""

    customer_id: str
    email: str | None
    customer_country: str | None
    card_country: str | None
    amount: int
    currency: str
    payment_method: str | None = None


@dataclass(frozen=True, slots=True)
class VelocityCounts:
    """Events in the current windows, this payment included; None when that counter is off."""

    customer: int | None = None
    payment_method: int | None = None


@dataclass(frozen=True, slots=True)
class FraudAssessment:
    """The job's ``fraud`` object: decision, score 0–100 and the codes of the rules that fired."""

    decision: Decision
    score: int
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{"decision", "score", "reasons": [...]}`` as stored on the job."""
        return {"decision": self.decision, "score": self.score, "reasons": list(self.reasons)}


DEFAULT_RULES = FraudRules()


def assess(inp: FraudInput, counts: VelocityCounts | None = None, rules: FraudRules = DEFAULT_RULES) -> FraudAssessment:
    """Apply the rules to one payment.  Pure: the same input, counts and rules give the same assessment.

    Raises :class:`~engine.domain.money.UnknownCurrency` for an unsupported currency.
    """
    counts = counts or VelocityCounts()
    fired: list[tuple[str, Decision, int]] = []

    if inp.customer_id in rules.blocked_customer_ids:
        fired.append(("customer_blocked", "decline", 100))
    if inp.email and _email_domain_blocked(inp.email, rules.blocked_email_domains):
        fired.append(("email_domain_blocked", "decline", 100))

    limit = rules.amount_limits.get(_currency(inp.currency).code)
    if limit is not None:
        if limit.decline_above is not None and inp.amount > limit.decline_above:
            fired.append(("amount_over_decline_limit", "decline", 100))
        elif limit.review_above is not None and inp.amount > limit.review_above:
            fired.append(("amount_over_review_limit", "review", rules.review_score))

    if (
        rules.customer_velocity_limit is not None
        and counts.customer is not None
        and counts.customer > rules.customer_velocity_limit
    ):
        fired.append(("customer_velocity", "review", rules.review_score))
    if (
        rules.payment_method_velocity_limit is not None
        and counts.payment_method is not None
        and counts.payment_method > rules.payment_method_velocity_limit
    ):
        fired.append(("payment_method_velocity", "review", rules.review_score))

    if (
        inp.card_country
        and inp.customer_country
        and inp.card_country.strip().upper() != inp.customer_country.strip().upper()
    ):
        # Score only: a traveller paying with a home card is common, so this never parks a job by itself.
        fired.append(("card_country_mismatch", "approve", rules.country_mismatch_score))

    decision: Decision = "approve"
    for _, action, _ in fired:
        if _SEVERITY[action] > _SEVERITY[decision]:
            decision = action
    score = min(100, sum(weight for _, _, weight in fired))
    return FraudAssessment(decision=decision, score=score, reasons=tuple(reason for reason, _, _ in fired))


def count_velocity(inp: FraudInput, counter: VelocityCounter, rules: FraudRules = DEFAULT_RULES) -> VelocityCounts:
    """Record this payment in the velocity windows that are on and return the counts for :func:`assess`.

    Keys are ``customer:{id}`` and ``payment_method:{pm}``; the counter adds its own namespace.  A stage that is redone
    hits again: persist the assessment with the stage checkpoint (``docs/design.md``, "Recovery points") so it is not
    redone.
    """
    customer = None
    if rules.customer_velocity_limit is not None:
        customer = counter.hit(f"customer:{inp.customer_id}", rules.customer_velocity_window_seconds)
    payment_method = None
    if rules.payment_method_velocity_limit is not None and inp.payment_method:
        payment_method = counter.hit(
            f"payment_method:{inp.payment_method}", rules.payment_method_velocity_window_seconds
        )
    return VelocityCounts(customer=customer, payment_method=payment_method)


def _email_domain_blocked(email: str, blocked: frozenset[str]) -> bool:
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    if not domain:
        return False
    # The domain itself or any parent: "x.fraud.test" is blocked with "fraud.test".
    parts = domain.split(".")
    return any(".".join(parts[i:]) in blocked for i in range(len(parts)))


def load_fraud_rules(path: str | Path | None = None) -> FraudRules:
    """Read fraud rules from JSON (default ``config/fraud_rules.json``); keys left out keep their defaults.

    The file's keys are :class:`FraudRules`'s fields; ``amount_limits`` maps a currency to
    ``{"review_above": int|null, "decline_above": int|null}``; lists stand for the frozensets.  Keys starting
    with ``_`` are comments.  Raises :class:`FraudRulesError` for an unreadable file, an unknown key or a bad value.
    """
    file = Path(path) if path is not None else FRAUD_RULES_PATH
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FraudRulesError(f"{file}: cannot read fraud rules: {exc}") from exc
    if not isinstance(raw, dict):
        raise FraudRulesError(f"{file}: the top level must be an object")
    known = {f.name for f in fields(FraudRules)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        if key not in known:
            raise FraudRulesError(f"{file}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        if key == "amount_limits":
            if not isinstance(value, dict):
                raise FraudRulesError(f"{file}: amount_limits must be an object keyed by currency")
            try:
                value = {
                    cur: AmountLimit(review_above=v.get("review_above"), decline_above=v.get("decline_above"))
                    for cur, v in value.items()
                }
            except AttributeError as exc:
                raise FraudRulesError(f"{file}: each amount limit must be an object") from exc
        elif key in ("blocked_email_domains", "blocked_customer_ids"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise FraudRulesError(f"{file}: {key} must be a list of strings")
            value = frozenset(value)
        kwargs[key] = value
    try:
        return FraudRules(**kwargs)
    except FraudRulesError as exc:
        raise FraudRulesError(f"{file}: {exc}") from exc
    except TypeError as exc:
        raise FraudRulesError(f"{file}: {exc}") from exc
