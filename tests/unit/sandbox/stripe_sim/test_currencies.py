"""Stripe's amount rules per currency."""

from __future__ import annotations

import pytest

from sandbox.stripe_sim.currencies import (
    check_charge_amount,
    exponent,
    format_amount,
    normalize_currency,
)
from sandbox.stripe_sim.errors import StripeError


@pytest.mark.parametrize(
    ("currency", "places"), [("eur", 2), ("JPY", 0), ("krw", 0), ("kwd", 3), ("bhd", 3), ("usd", 2)]
)
def test_exponents(currency: str, places: int) -> None:
    assert exponent(currency) == places


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(50, "eur"), (50, "usd"), (30, "gbp"), (50, "jpy"), (1500, "czk"), (17500, "huf"), (10, "kwd"), (1, "pen")],
)
def test_accepted(amount: int, currency: str) -> None:
    check_charge_amount(amount, currency)


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (49, "eur", "amount_too_small"),
        (0, "pen", "amount_too_small"),
        (-5, "usd", "amount_too_small"),
        (1499, "czk", "amount_too_small"),
        (15, "kwd", "parameter_invalid_integer"),
        (1001, "jod", "parameter_invalid_integer"),
        (150, "isk", "parameter_invalid_integer"),
        (100_000_000, "eur", "amount_too_large"),
    ],
)
def test_refused_with_param_amount(amount: int, currency: str, code: str) -> None:
    with pytest.raises(StripeError) as info:
        check_charge_amount(amount, currency)
    assert info.value.param == "amount" and info.value.code == code and info.value.status == 400


def test_currency_normalization() -> None:
    assert normalize_currency("EUR") == "eur"
    with pytest.raises(StripeError) as info:
        normalize_currency("eurx")
    assert info.value.param == "currency"


def test_format_amount() -> None:
    assert format_amount(50, "eur") == "0.50 eur"
    assert format_amount(50, "jpy") == "50 jpy"
    assert format_amount(1230, "kwd") == "1.230 kwd"
