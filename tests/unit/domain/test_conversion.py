"""ECB rates and conversion between currencies (engine.domain.conversion): the OSS rule, rounding, errors."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import pytest

from engine.domain.conversion import (
    InvalidRate,
    Rate,
    RateMissing,
    RateTable,
    convert,
    easter_sunday,
    ecb_closed,
    parse_rate,
)
from engine.domain.ecb_files import parse
from engine.domain.money import currency

DATA = Path(__file__).resolve().parents[2] / "data" / "ecb"


@pytest.fixture(scope="module")
def table() -> RateTable:
    """The real publications of 2024-03-27 … 2024-09-26 in tests/data/ecb."""
    rows = parse((DATA / "eurofxref-hist-2024.csv").read_bytes())
    return RateTable((r.day, r.currency, r.rate) for r in rows)


@pytest.mark.parametrize(
    ("year", "easter"),
    [(2000, date(2000, 4, 23)), (2019, date(2019, 4, 21)), (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)),
     (2026, date(2026, 4, 5)), (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22))],
)  # fmt: skip
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


@pytest.mark.parametrize(
    ("day", "closed"),
    [(date(2024, 3, 28), False), (date(2024, 3, 29), True), (date(2024, 4, 1), True), (date(2024, 4, 2), False),
     (date(2024, 5, 1), True), (date(2024, 6, 29), True), (date(2024, 6, 30), True), (date(2024, 7, 1), False),
     (date(2024, 12, 24), False), (date(2024, 12, 25), True), (date(2024, 12, 26), True), (date(2024, 12, 31), False),
     (date(2025, 1, 1), True), (date(2026, 4, 3), True), (date(2026, 4, 6), True), (date(2026, 9, 30), False)],
)  # fmt: skip
def test_ecb_closing_days(day: date, closed: bool) -> None:
    assert ecb_closed(day) is closed


def test_every_day_of_the_real_file_is_a_publication_day_and_no_business_day_between_is_missing(
    table: RateTable,
) -> None:
    days = table.days
    assert not any(ecb_closed(d) for d in days)
    # 2024-03-28 → 2024-04-02 and 2024-06-28 → 2024-07-01 are consecutive publications: only closing days between.
    for before, after in [(date(2024, 3, 28), date(2024, 4, 2)), (date(2024, 6, 28), date(2024, 7, 1))]:
        between = [before + timedelta(days=n) for n in range(1, (after - before).days)]
        assert between and all(ecb_closed(d) for d in between)


def test_period_end_rate_is_that_days_publication(table: RateTable) -> None:
    assert table.period_end_rate("SEK", date(2024, 6, 28)) == Rate("sek", date(2024, 6, 28), Decimal("11.3595"))


def test_period_end_on_a_sunday_takes_the_next_publication(table: RateTable) -> None:
    # Q2 2024 ends on Sunday 30 June: the ECB's next publication is Monday 1 July.
    assert table.period_end_rate("sek", date(2024, 6, 30)) == Rate("sek", date(2024, 7, 1), Decimal("11.3675"))
    assert table.period_end_rate("HUF", date(2024, 6, 30)).value == Decimal("394.25")


def test_period_end_over_easter_walks_past_good_friday_and_easter_monday(table: RateTable) -> None:
    # Q1 2024 ends on Easter Sunday 31 March; Monday 1 April is a TARGET holiday: the next publication is 2 April.
    assert table.period_end_rate("PLN", date(2024, 3, 31)) == Rate("pln", date(2024, 4, 2), Decimal("4.2938"))


def test_euro_needs_no_publication(table: RateTable) -> None:
    assert table.period_end_rate("EUR", date(2030, 1, 1)) == Rate.euro(date(2030, 1, 1))
    assert RateTable().latest_rate("eur", date(2030, 1, 1)).value == 1


def test_a_business_day_not_imported_is_missing_not_borrowed_from_the_next_day() -> None:
    table = RateTable([(date(2024, 6, 27), "sek", "11.338"), (date(2024, 7, 1), "sek", "11.3675")])
    with pytest.raises(RateMissing) as caught:
        table.period_end_rate("SEK", date(2024, 6, 28))
    assert caught.value.currency == "sek" and caught.value.day == date(2024, 6, 28)
    assert "SEK" in str(caught.value) and "2024-06-28" in str(caught.value)
    assert caught.value.code == "rate_missing"


def test_a_weekend_followed_by_a_missing_business_day_names_the_business_day() -> None:
    table = RateTable([(date(2024, 6, 28), "sek", "11.3595")])
    with pytest.raises(RateMissing) as caught:
        table.period_end_rate("sek", date(2024, 6, 30))
    assert caught.value.day == date(2024, 7, 1)
    assert "2024-06-30" in str(caught.value)


def test_a_publication_without_the_currency_is_missing(table: RateTable) -> None:
    with pytest.raises(RateMissing, match=r"CYP .*2024-07-01"):
        table.period_end_rate("CYP", date(2024, 6, 30))


def test_latest_rate_is_the_most_recent_on_or_before(table: RateTable) -> None:
    assert table.latest_rate("CZK", date(2024, 8, 15)) == Rate("czk", date(2024, 7, 2), Decimal("25.185"))
    assert table.latest_rate("CZK", date(2024, 7, 2)).day == date(2024, 7, 2)
    with pytest.raises(RateMissing, match="CZK on 2024-01-01"):
        table.latest_rate("CZK", date(2024, 1, 1))
    with pytest.raises(RateMissing, match="XYZ"):
        table.latest_rate("XYZ", date(2024, 8, 15))


def test_two_different_rates_for_one_day_are_refused() -> None:
    table = RateTable([(date(2024, 6, 28), "huf", "395.1")])
    table.add(date(2024, 6, 28), "HUF", "395.10")  # the same rate spelt as the XML spells it
    with pytest.raises(ValueError, match="two rates for HUF"):
        table.add(date(2024, 6, 28), "huf", "395.11")


@pytest.mark.parametrize("bad", ["", "0", "0.0", "-1.5", "1e3", "1,5", "abc", " ", "1.", ".5", "NaN", 1.5, None])
def test_malformed_rates_are_refused(bad: object) -> None:
    with pytest.raises(InvalidRate):
        parse_rate(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRate):
        RateTable([(date(2024, 1, 2), "sek", bad)])  # type: ignore[list-item]


@pytest.mark.parametrize("bad", ["se", "SEKK", "", "12a", None])
def test_malformed_currencies_are_refused(bad: object) -> None:
    with pytest.raises(InvalidRate):
        RateTable([(date(2024, 1, 2), bad, "1.5")])  # type: ignore[list-item]


# --- conversion ---------------------------------------------------------------------------------------------------

D = date(2024, 7, 1)
EUR = Rate.euro(D)
SEK = Rate("sek", D, Decimal("11.3675"))
PLN = Rate("pln", D, Decimal("4.3008"))
HUF = Rate("huf", D, Decimal("394.25"))
CZK = Rate("czk", D, Decimal("25.048"))
JPY = Rate("jpy", D, Decimal("173.15"))
ISK = Rate("isk", D, Decimal("148.9"))


@pytest.mark.parametrize(
    ("amount", "source", "target", "expected"),
    [
        # 1,000.00 SEK / 11.3675 = 87.970090… EUR
        (100_000, SEK, EUR, 8_797),
        # 250.00 PLN / 4.3008 = 58.128720… EUR
        (25_000, PLN, EUR, 5_813),
        # 39,425.00 HUF / 394.25 = 100 EUR exactly
        (3_942_500, HUF, EUR, 10_000),
        # 1,252.40 CZK / 25.048 = 50 EUR exactly; 1,252.41 CZK = 50.000399… EUR
        (125_240, CZK, EUR, 5_000),
        (125_241, CZK, EUR, 5_000),
        # 100.00 EUR → 17,315 JPY (zero-decimal)
        (10_000, EUR, JPY, 17_315),
        # 1.00 EUR → 148.9 ISK → 149 krónur, which the API writes as 14900
        (100, EUR, ISK, 14_900),
        # cross rate: 1,000.00 SEK → 87.970090 EUR → 378.341759… PLN
        (100_000, SEK, PLN, 37_834),
        (-100_000, SEK, EUR, -8_797),
        (0, SEK, EUR, 0),
        (12_345, EUR, EUR, 12_345),
    ],
)
def test_convert_by_hand(amount: int, source: Rate, target: Rate, expected: int) -> None:
    assert convert(amount, source, target) == expected


def test_ties_round_half_up_away_from_zero() -> None:
    two = Rate("sek", D, Decimal("2"))
    # 1 öre at 2 SEK/EUR is exactly half a cent.
    assert convert(1, two, EUR) == 1
    assert convert(-1, two, EUR) == -1
    assert convert(3, two, EUR) == 2  # 1.5 → 2
    assert convert(5, Rate("huf", D, Decimal("10")), EUR) == 1  # 0.5 → 1


def test_a_three_decimal_target_keeps_its_three_decimals() -> None:
    kwd = Rate("kwd", D, Decimal("0.3297"))
    # 10.00 EUR × 0.3297 = 3.297 KWD: the ISO exponent is 3, so 3297 (not rounded to a multiple of 10).
    assert convert(1_000, EUR, kwd) == 3_297


@pytest.mark.parametrize("bad", [1.5, Decimal("1"), "100", True, None])
def test_amount_must_be_an_int(bad: object) -> None:
    with pytest.raises(TypeError):
        convert(bad, SEK, EUR)  # type: ignore[arg-type]


def _oracle(amount: int, source: Rate, target: Rate) -> int:
    """Decimal arithmetic at 80 digits, quantized half up: written independently of convert()."""
    src, dst = currency(source.currency), currency(target.currency)
    with localcontext() as ctx:
        ctx.prec = 80
        value = (
            Decimal(amount) * target.value * Decimal(10) ** dst.exponent / (source.value * Decimal(10) ** src.exponent)
        )
        step = Decimal(10) ** (dst.exponent - dst.iso_exponent)
        return int((value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)


def _random_rate(rng: random.Random, code: str, digits: int) -> Rate:
    if code == "eur":
        return Rate.euro(D)
    return Rate(code, D, Decimal(rng.randint(1, 10**7)) / Decimal(10**digits))


def test_convert_agrees_with_an_independent_decimal_oracle_on_random_cases() -> None:
    rng = random.Random(20261203)
    codes = ["eur", "sek", "pln", "huf", "czk", "dkk", "jpy", "isk", "usd", "gbp", "ron", "krw"]
    for _ in range(5_000):
        source_code, target_code = rng.choice(codes), rng.choice(codes)
        digits = rng.randint(1, 5)
        source, target = _random_rate(rng, source_code, digits), _random_rate(rng, target_code, digits)
        amount = rng.randint(-(10**10), 10**10)
        got = convert(amount, source, target)
        assert got == _oracle(amount, source, target), (amount, source, target)
        assert convert(-amount, source, target) == -got  # symmetric: half up is away from zero
        assert got % currency(target_code).iso_step == 0


def test_convert_is_monotonic() -> None:
    rng = random.Random(7)
    for _ in range(500):
        a, b = sorted(rng.randint(-(10**8), 10**8) for _ in range(2))
        assert convert(a, SEK, EUR) <= convert(b, SEK, EUR)
        assert convert(a, EUR, HUF) <= convert(b, EUR, HUF)
