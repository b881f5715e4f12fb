"""Currencies, chargeable amounts, formatting and half-up rounding (engine.domain.money)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest

from engine.domain import money
from engine.domain.money import (
    MAXIMUM_AMOUNT,
    AmountNotChargeable,
    Currency,
    UnknownCurrency,
    check_chargeable,
    currency,
    format_amount,
    round_half_up,
    round_half_up_to,
)


@pytest.mark.parametrize(
    ("code", "exponent", "step"),
    [("EUR", 2, 1), ("eur", 2, 1), (" Usd ", 2, 1), ("JPY", 0, 1), ("krw", 0, 1), ("KWD", 3, 10), ("bhd", 3, 10),
     ("JOD", 3, 10), ("omr", 3, 10), ("TND", 3, 10), ("ISK", 2, 100), ("huf", 2, 1)],
)  # fmt: skip
def test_currency_lookup_accepts_either_case_and_returns_lower_case(code: str, exponent: int, step: int) -> None:
    cur = currency(code)
    assert cur.code == code.strip().lower()
    assert (cur.exponent, cur.step) == (exponent, step)
    assert Currency.of(code) is cur
    assert currency(cur) is cur


@pytest.mark.parametrize("code", ["XXX", "", "eu", "euro", None, 978, "BTC"])
def test_unknown_currency_is_refused(code: object) -> None:
    with pytest.raises(UnknownCurrency):
        currency(code)  # type: ignore[arg-type]


def test_three_decimal_and_zero_decimal_lists_are_stripes() -> None:
    assert {c for c in money.SUPPORTED_CURRENCIES if currency(c).three_decimal} == {"bhd", "jod", "kwd", "omr", "tnd"}
    zero = {c for c in money.SUPPORTED_CURRENCIES if currency(c).exponent == 0}
    assert zero == {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
    assert len(money.SUPPORTED_CURRENCIES) >= 135


@pytest.mark.parametrize(
    ("code", "minimum"),
    [("eur", 50), ("usd", 50), ("gbp", 30), ("jpy", 50), ("chf", 50), ("czk", 1500), ("dkk", 250), ("huf", 17500),
     ("mxn", 1000), ("thb", 1000), ("sek", 300), ("nok", 300), ("pln", 200), ("hkd", 400), ("aed", 200)],
)  # fmt: skip
def test_stripe_minimum_charge_amounts(code: str, minimum: int) -> None:
    assert currency(code).minimum_charge == minimum
    check_chargeable(minimum, code)
    with pytest.raises(AmountNotChargeable) as err:
        check_chargeable(minimum - 1, code.upper())
    assert err.value.code == "amount_too_small"


def test_currency_without_documented_minimum_needs_one_step() -> None:
    assert currency("kes").minimum_charge is None
    check_chargeable(1, "kes")
    with pytest.raises(AmountNotChargeable):
        check_chargeable(0, "kes")
    check_chargeable(10, "kwd")
    with pytest.raises(AmountNotChargeable):
        check_chargeable(0, "kwd")


def test_three_decimal_amounts_must_end_in_zero() -> None:
    for code in ("kwd", "BHD", "jod", "omr", "tnd"):
        check_chargeable(1230, code)
        for bad in (1231, 1235, 1239):
            with pytest.raises(AmountNotChargeable) as err:
                check_chargeable(bad, code)
            assert err.value.code == "amount_invalid_precision"


def test_isk_amounts_are_whole_kronur() -> None:
    check_chargeable(500, "isk")
    with pytest.raises(AmountNotChargeable) as err:
        check_chargeable(550, "isk")
    assert err.value.code == "amount_invalid_precision"


def test_eight_digit_maximum() -> None:
    check_chargeable(MAXIMUM_AMOUNT, "eur")
    with pytest.raises(AmountNotChargeable) as err:
        check_chargeable(MAXIMUM_AMOUNT + 1, "eur")
    assert err.value.code == "amount_too_large"


@pytest.mark.parametrize("amount", [12.5, "1250", True, Decimal("1250")])
def test_amounts_must_be_ints(amount: object) -> None:
    with pytest.raises(TypeError):
        check_chargeable(amount, "eur")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_amount(amount, "eur")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "code", "text"),
    [(1234, "eur", "12.34 EUR"), (5, "EUR", "0.05 EUR"), (0, "usd", "0.00 USD"), (-5, "eur", "-0.05 EUR"),
     (-1234, "gbp", "-12.34 GBP"), (500, "jpy", "500 JPY"), (1230, "kwd", "1.230 KWD"), (7, "bhd", "0.007 BHD"),
     (500, "isk", "5.00 ISK"), (99_999_999, "usd", "999999.99 USD")],
)  # fmt: skip
def test_format_amount(amount: int, code: str, text: str) -> None:
    assert format_amount(amount, code) == text


def test_round_half_up_against_decimal() -> None:
    # Decimal's ROUND_HALF_UP is the oracle (ties away from zero); every tenth from -20 to 20 is checked.
    for tenths in range(-200, 201):
        exact = Fraction(tenths, 10)
        expected = int(Decimal(tenths).scaleb(-1).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert round_half_up(exact) == expected, exact
        assert round_half_up(Decimal(tenths) / 10) == expected
    assert round_half_up(Fraction(5, 2)) == 3
    assert round_half_up(Fraction(-5, 2)) == -3
    assert round_half_up(Fraction(7, 3)) == 2
    assert round_half_up(42) == 42


def test_round_half_up_to_a_step() -> None:
    assert round_half_up_to(Fraction(125), 10) == 130
    assert round_half_up_to(Fraction(12499, 100), 10) == 120
    assert round_half_up_to(Fraction(-125), 10) == -130
    assert round_half_up_to(Decimal("2344.6"), 10) == 2340
    assert round_half_up_to(150, 100) == 200
    for n in range(0, 1000):
        assert round_half_up_to(Fraction(n, 7), 10) % 10 == 0


@pytest.mark.parametrize("bad", [1.5, "1", None, True])
def test_round_half_up_refuses_floats_and_others(bad: object) -> None:
    with pytest.raises(TypeError):
        round_half_up(bad)  # type: ignore[arg-type]


def test_round_half_up_refuses_bad_steps_and_non_finite() -> None:
    with pytest.raises(ValueError):
        round_half_up_to(Fraction(1), 0)
    with pytest.raises(ValueError):
        round_half_up(Decimal("NaN"))


def test_agrees_with_the_stripe_sandbox() -> None:
    # The sandbox keeps its own copy of Stripe's rules; both must refuse and accept the same amounts.
    sim = pytest.importorskip("sandbox.stripe_sim.currencies")
    assert sim.SUPPORTED == money.SUPPORTED_CURRENCIES
    assert sim.MINIMUM_AMOUNTS == money.MINIMUM_CHARGE
    assert sim.ZERO_DECIMAL == money.ZERO_DECIMAL
    assert sim.THREE_DECIMAL == money.THREE_DECIMAL
    assert sim.MAXIMUM_AMOUNT == MAXIMUM_AMOUNT


@pytest.mark.parametrize(
    ("code", "iso_exponent", "iso_step"),
    [("EUR", 2, 1), ("SEK", 2, 1), ("HUF", 2, 1), ("JPY", 0, 1), ("KWD", 3, 1), ("ISK", 0, 100)],
)
def test_iso_exponent_is_what_conversions_round_to(code: str, iso_exponent: int, iso_step: int) -> None:
    cur = currency(code)
    assert (cur.iso_exponent, cur.iso_step) == (iso_exponent, iso_step)
