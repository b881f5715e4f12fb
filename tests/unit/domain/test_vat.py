"""EU VAT (engine.domain.vat): official rates, effective dates, place of supply and amounts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest

from engine.domain.money import UnknownCurrency
from engine.domain.vat import (
    EU_MEMBER_STATES,
    VatError,
    VatIdCountryMismatch,
    VatRateUnavailable,
    VatResult,
    assess_vat,
    check_vat_id,
    compute_amounts,
    format_rate,
    is_eu,
    load_vat_rates,
    proportional_vat,
    rate_for,
)

RATES = load_vat_rates()

TODAY = date(2026, 11, 26)

# The official rates in force on 2026-11-26 (EC TEDB / national law; docs/vat.md): standard, highest reduced,
# super-reduced or else lowest reduced.  Written out by hand, independently of config/vat_rates.json.
OFFICIAL = {
    "AT": ("20", "13", "4.9"), "BE": ("21", "12", "6"), "BG": ("20", "9", "9"), "CY": ("19", "9", "3"),
    "CZ": ("21", "12", "12"), "DE": ("19", "7", "7"), "DK": ("25", "25", "25"), "EE": ("24", "13", "9"),
    "ES": ("21", "10", "4"), "FI": ("25.5", "13.5", "10"), "FR": ("20", "10", "2.1"), "GR": ("24", "13", "6"),
    "HR": ("25", "13", "5"), "HU": ("27", "18", "5"), "IE": ("23", "13.5", "4.8"), "IT": ("22", "10", "4"),
    "LT": ("21", "12", "5"), "LU": ("17", "14", "3"), "LV": ("21", "12", "5"), "MT": ("18", "7", "5"),
    "NL": ("21", "9", "9"), "PL": ("23", "8", "5"), "PT": ("23", "13", "6"), "RO": ("21", "11", "11"),
    "SE": ("25", "12", "6"), "SI": ("22", "9.5", "5"), "SK": ("23", "19", "5"),
}  # fmt: skip

# Valid VAT ids (python-stdnum's own documentation and test data).
VALID_IDS = {
    "AT": "ATU57194903", "BE": "BE0697449992", "BG": "BG175074752", "CY": "CY10259033P", "CZ": "CZ25123891",
    "DE": "DE136695976", "DK": "DK13585628", "EE": "EE100931558", "ES": "ESB58378431", "FI": "FI20774740",
    "FR": "FR40303265045", "GR": "EL094259216", "HR": "HR33392005961", "HU": "HU12892312", "IE": "IE6433435F",
    "IT": "IT00743110157", "LT": "LT119511515", "LU": "LU15027442", "LV": "LV40003521600", "MT": "MT11679112",
    "NL": "NL004495445B01", "PL": "PL8567346215", "PT": "PT501964843", "RO": "RO18547290", "SE": "SE556188840401",
    "SI": "SI50223054", "SK": "SK2022749619",
}  # fmt: skip


def oracle_round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def b2c(country: str, **kw: object) -> VatResult:
    args: dict[str, object] = {"amount": 10000, "currency": "eur", "seller_country": "IE", "at": TODAY, "rates": RATES}
    args.update(kw)
    return assess_vat(customer_country=country, **args)  # type: ignore[arg-type]


def test_the_table_covers_exactly_the_27_member_states() -> None:
    assert set(OFFICIAL) == EU_MEMBER_STATES == set(RATES.states) == set(VALID_IDS)
    assert RATES.sources


@pytest.mark.parametrize("country", sorted(OFFICIAL))
def test_rates_in_force_today_are_the_official_ones(country: str) -> None:
    standard, reduced, super_reduced = OFFICIAL[country]
    assert rate_for(country, "standard", TODAY, rates=RATES) == Decimal(standard)
    assert rate_for(country, "reduced", TODAY, rates=RATES) == Decimal(reduced)
    assert rate_for(country.lower(), "super_reduced", TODAY, rates=RATES) == Decimal(super_reduced)


@pytest.mark.parametrize("country", sorted(OFFICIAL))
@pytest.mark.parametrize("category", ["standard", "reduced"])
def test_one_b2c_oss_payment_per_state_exclusive_and_inclusive(country: str, category: str) -> None:
    rate = Decimal(OFFICIAL[country][0 if category == "standard" else 1])
    scheme = "domestic" if country == "IE" else "oss"
    for amount in (10000, 1999, 123457):
        ex = b2c(country, amount=amount, tax_category=category, tax_behavior="exclusive")
        vat = oracle_round(amount * rate / 100)
        expected_rate = OFFICIAL[country][0 if category == "standard" else 1]
        assert (ex.country, ex.rate, ex.scheme) == (country, expected_rate, scheme)
        assert (ex.net, ex.vat, ex.total, ex.currency, ex.notes) == (amount, vat, amount + vat, "eur", ())

        inc = b2c(country, amount=amount, tax_category=category, tax_behavior="inclusive")
        net = oracle_round(amount * 100 / (100 + rate))
        assert (inc.country, inc.rate, inc.scheme) == (ex.country, ex.rate, scheme)
        assert (inc.net, inc.vat, inc.total) == (net, amount - net, amount)


def test_spot_values() -> None:
    assert b2c("FI").vat_block() == {"country": "FI", "rate": "25.5", "scheme": "oss"}
    assert b2c("FI").amounts_block() == {"net": 10000, "vat": 2550, "total": 12550, "currency": "eur"}
    inc = b2c("FI", tax_behavior="inclusive")
    assert (inc.net, inc.vat, inc.total) == (7968, 2032, 10000)
    assert b2c("IE").vat_block() == {"country": "IE", "rate": "23", "scheme": "domestic"}
    assert b2c("HU", amount=1000).vat == 270


@pytest.mark.parametrize(
    ("country", "category", "last_day", "before", "after"),
    [("FI", "standard", date(2024, 8, 31), "24", "25.5"), ("EE", "standard", date(2025, 6, 30), "22", "24"),
     ("EE", "standard", date(2023, 12, 31), "20", "22"), ("EE", "reduced", date(2024, 12, 31), "9", "13"),
     ("SK", "standard", date(2024, 12, 31), "20", "23"), ("SK", "reduced", date(2024, 12, 31), "10", "19"),
     ("RO", "standard", date(2025, 7, 31), "19", "21"), ("RO", "reduced", date(2025, 7, 31), "9", "11"),
     ("RO", "super_reduced", date(2025, 7, 31), "5", "11"), ("CZ", "reduced", date(2023, 12, 31), "15", "12"),
     ("CZ", "super_reduced", date(2023, 12, 31), "10", "12"), ("LU", "standard", date(2023, 12, 31), "16", "17"),
     ("LU", "reduced", date(2023, 12, 31), "13", "14"), ("FI", "reduced", date(2025, 12, 31), "14", "13.5"),
     ("LT", "reduced", date(2025, 12, 31), "9", "12"), ("CY", "super_reduced", date(2023, 7, 20), "5", "3"),
     ("AT", "super_reduced", date(2026, 6, 30), "10", "4.9")],
)  # fmt: skip
def test_rate_changes_on_the_effective_date(
    country: str, category: str, last_day: date, before: str, after: str
) -> None:
    assert rate_for(country, category, last_day, rates=RATES) == Decimal(before)  # type: ignore[arg-type]
    assert rate_for(country, category, last_day + timedelta(days=1), rates=RATES) == Decimal(after)  # type: ignore[arg-type]


def test_the_payment_uses_the_rate_of_its_acceptance_time() -> None:
    before = b2c("FI", at=datetime(2024, 8, 31, 23, 59, 59, tzinfo=UTC))
    after = b2c("FI", at=datetime(2024, 9, 1, 0, 0, tzinfo=UTC))
    assert (before.rate, before.vat) == ("24", 2400)
    assert (after.rate, after.vat) == ("25.5", 2550)
    # 01:30 in Helsinki on 1 September is still 31 August in UTC.
    helsinki = timezone(timedelta(hours=3))
    assert b2c("FI", at=datetime(2024, 9, 1, 1, 30, tzinfo=helsinki)).rate == "24"


def test_dates_before_the_data_are_refused() -> None:
    with pytest.raises(VatRateUnavailable):
        rate_for("DE", "standard", date(2022, 12, 31), rates=RATES)
    with pytest.raises(VatRateUnavailable):
        b2c("DE", at=date(2020, 1, 1))


def test_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError):
        rate_for("DE", "zero", TODAY, rates=RATES)  # type: ignore[arg-type]


def test_format_rate() -> None:
    assert [format_rate(Decimal(x)) for x in ("23", "23.0", "25.50", "4.8", "0", "0.00", "100")] == [
        "23", "23", "25.5", "4.8", "0", "0", "100"
    ]  # fmt: skip


# -- place of supply --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("country", sorted(EU_MEMBER_STATES - {"IE"}))
def test_reverse_charge_for_b2b_cross_border_with_a_valid_vat_id(country: str) -> None:
    r = b2c(country, customer_type="business", vat_id=VALID_IDS[country])
    assert (r.country, r.rate, r.scheme, r.net, r.vat, r.total, r.notes) == (
        country, "0", "reverse_charge", 10000, 0, 10000, ()
    )  # fmt: skip
    inc = b2c(country, customer_type="business", vat_id=VALID_IDS[country], tax_behavior="inclusive")
    assert (inc.net, inc.vat, inc.total) == (10000, 0, 10000)


def test_vat_ids_are_compacted_before_checking() -> None:
    for vat_id in ("DE 136 695 976", "de136695976", "DE-136.695.976", "136695976"):
        assert b2c("DE", customer_type="business", vat_id=vat_id).scheme == "reverse_charge"
    assert check_vat_id("de 136 695 976", "de").number == "DE136695976"


def test_domestic_b2b_pays_the_sellers_rate() -> None:
    r = b2c("IE", customer_type="business", vat_id=VALID_IDS["IE"])
    assert (r.country, r.rate, r.scheme, r.vat, r.notes) == ("IE", "23", "domestic", 2300, ())
    de = assess_vat(amount=10000, currency="eur", seller_country="DE", customer_country="DE",
                    customer_type="business", vat_id=VALID_IDS["DE"], at=TODAY, rates=RATES)  # fmt: skip
    assert (de.rate, de.scheme) == ("19", "domestic")


def test_business_with_invalid_vat_id_is_taxed_as_b2c_with_a_note() -> None:
    r = b2c("DE", customer_type="business", vat_id="DE136695977")
    assert (r.country, r.rate, r.scheme, r.vat) == ("DE", "19", "oss", 1900)
    assert r.notes == ("vat_id_invalid",)
    missing = b2c("DE", customer_type="business")
    assert (missing.scheme, missing.notes) == ("oss", ("vat_id_invalid", "vat_id_missing"))
    garbage = b2c("DE", customer_type="business", vat_id="DE-not-a-number")
    assert garbage.notes == ("vat_id_invalid",)


def test_consumer_with_a_vat_id_is_still_b2c() -> None:
    assert b2c("DE", customer_type="consumer", vat_id=VALID_IDS["DE"]).scheme == "oss"


@pytest.mark.parametrize(("country", "vat_id"), [("FR", "DE136695976"), ("AT", "DE136695976"), ("GR", "CY10259033P"),
                                                  ("DE", "EL094259216"), ("US", "DE136695976")])  # fmt: skip
def test_vat_id_prefix_must_match_the_customers_country(country: str, vat_id: str) -> None:
    for customer_type in ("business", "consumer"):
        with pytest.raises(VatIdCountryMismatch) as err:
            b2c(country, customer_type=customer_type, vat_id=vat_id)
        assert err.value.code == "vat_id_country_mismatch"
        assert err.value.param == "customer.vat_id"
        assert vat_id not in str(err.value)


def test_greece_el_and_gr_are_one_country() -> None:
    for country in ("GR", "gr", "EL", "el"):
        for vat_id in ("EL094259216", "GR094259216", "094259216"):
            r = b2c(country, customer_type="business", vat_id=vat_id)
            assert (r.country, r.scheme) == ("GR", "reverse_charge")
        assert b2c(country).vat_block() == {"country": "GR", "rate": "24", "scheme": "oss"}
    greek_seller = assess_vat(amount=1000, currency="eur", seller_country="EL", customer_country="GR", at=TODAY,
                              rates=RATES)  # fmt: skip
    assert (greek_seller.country, greek_seller.scheme) == ("GR", "domestic")


@pytest.mark.parametrize("country", ["US", "GB", "ch", "NO", "JP"])
def test_outside_the_eu_is_out_of_scope(country: str) -> None:
    for behavior in ("exclusive", "inclusive"):
        for customer_type in ("consumer", "business"):
            r = b2c(country, tax_behavior=behavior, customer_type=customer_type)
            assert (r.country, r.rate, r.scheme, r.net, r.vat, r.total) == (
                country.upper(), "0", "outside_scope", 10000, 0, 10000
            )  # fmt: skip
    assert not is_eu(country)


def test_oss_off_uses_the_sellers_rate_until_the_threshold_is_exceeded() -> None:
    under = b2c("DE", oss=False, cross_border_b2c_eur_cents=1_000_000)
    assert (under.country, under.rate, under.scheme, under.vat) == ("IE", "23", "domestic", 2300)
    assert under.notes == ("below_oss_threshold",)
    over = b2c("DE", oss=False, cross_border_b2c_eur_cents=1_000_001)
    assert (over.country, over.rate, over.scheme, over.vat) == ("DE", "19", "oss", 1900)
    assert over.notes == ("oss_threshold_exceeded",)
    # OSS on: the customer's rate whatever the total.
    assert b2c("DE", oss=True, cross_border_b2c_eur_cents=0).rate == "19"
    # Domestic and B2B sales are not affected by the OSS setting.
    assert b2c("IE", oss=False).notes == ()
    assert b2c("DE", oss=False, customer_type="business", vat_id=VALID_IDS["DE"]).scheme == "reverse_charge"
    # A business without a valid id is B2C, so the threshold applies to it too.
    b = b2c("DE", oss=False, customer_type="business", vat_id="DE000000000")
    assert (b.scheme, b.notes) == ("domestic", ("vat_id_invalid", "below_oss_threshold"))


def test_seller_outside_the_eu_and_bad_inputs_are_refused() -> None:
    with pytest.raises(VatError):
        assess_vat(amount=100, currency="eur", seller_country="US", customer_country="DE", at=TODAY, rates=RATES)
    with pytest.raises(VatError):
        b2c("Germany")
    with pytest.raises(VatError):
        b2c("DE", customer_type="company")
    with pytest.raises(UnknownCurrency):
        b2c("DE", currency="xyz")
    with pytest.raises(ValueError):
        b2c("DE", amount=-1)
    with pytest.raises(ValueError):
        b2c("DE", tax_behavior="gross")


# -- amounts --------------------------------------------------------------------------------------------------


def test_half_up_ties() -> None:
    # 50 × 21 % = 10.5 → 11.
    assert compute_amounts(50, "eur", Decimal(21), "exclusive") == (50, 11, 61)
    # 3 × 100/120 = 2.5 → net 3, VAT 0.
    assert compute_amounts(3, "eur", Decimal(20), "inclusive") == (3, 0, 3)


def test_amount_properties_against_a_decimal_oracle() -> None:
    for rate in map(Decimal, ("0", "4.8", "5.5", "9.5", "13.5", "19", "20", "21", "23", "25.5", "27")):
        for amount in range(0, 3000, 7):
            net, vat, total = compute_amounts(amount, "eur", rate, "exclusive")
            expected_vat = oracle_round(amount * rate / 100)
            assert (net, vat, total) == (amount, expected_vat, amount + expected_vat)
            net, vat, total = compute_amounts(amount, "EUR", rate, "inclusive")
            assert net == oracle_round(amount * 100 / (100 + rate)) and net + vat == total == amount
            assert 0 <= vat <= amount


def test_three_decimal_currencies_round_vat_to_a_multiple_of_ten() -> None:
    r = b2c("DE", amount=12340, currency="KWD")
    assert (r.net, r.vat, r.total, r.currency) == (12340, 2340, 14680, "kwd")  # 2344.6 → 2340
    r = b2c("IE", amount=10250, currency="bhd")
    assert (r.vat, r.total) == (2360, 12610)  # 2357.5 → 2360
    for code in ("kwd", "bhd", "jod", "omr", "tnd"):
        for rate in map(Decimal, ("19", "23", "25.5", "13.5")):
            for amount in range(10, 20000, 130):
                for behavior in ("exclusive", "inclusive"):
                    net, vat, total = compute_amounts(amount, code, rate, behavior)
                    exact = amount * rate / 100 if behavior == "exclusive" else amount * rate / (100 + rate)
                    assert vat % 10 == 0 and total % 10 == 0 and net + vat == total
                    assert abs(vat - exact) <= 5


def test_jpy_has_no_minor_unit() -> None:
    r = b2c("DE", amount=999, currency="JPY")
    assert (r.net, r.vat, r.total, r.currency) == (999, 190, 1189, "jpy")  # 189.81 → 190
    inc = b2c("FI", amount=1000, currency="jpy", tax_behavior="inclusive")
    assert (inc.net, inc.vat) == (797, 203)  # 1000 / 1.255 = 796.81


def test_isk_vat_is_whole_kronur() -> None:
    r = b2c("DE", amount=12300, currency="isk")
    assert r.vat % 100 == 0 and r.vat == 2300  # 2337 → 2300


# -- refunds ----------------------------------------------------------------------------------------------------


def test_full_refund_returns_everything() -> None:
    original = b2c("FI")
    assert proportional_vat(original.total, original) == (original.net, original.vat)


def test_partial_refunds_add_up_to_the_original_to_the_minor_unit() -> None:
    for country, amount, code in (("FI", 10001, "eur"), ("HU", 777, "eur"), ("DE", 12340, "kwd"), ("IE", 13, "eur")):
        original = b2c(country, amount=amount, currency=code)
        step = 10 if code == "kwd" else 1
        for piece in (step, 3 * step, 7 * step, 100 * step):
            refunded = refunded_vat = 0
            while refunded < original.total:
                part = min(piece, original.total - refunded)
                net, vat = proportional_vat(part, original, refunded, refunded_vat)
                assert net + vat == part and 0 <= vat <= part and net >= 0
                refunded, refunded_vat = refunded + part, refunded_vat + vat
            assert (refunded, refunded_vat) == (original.total, original.vat)


def test_partial_refund_is_proportional() -> None:
    original = b2c("FI")  # 10000 + 2550 = 12550
    assert proportional_vat(5000, original) == (3984, 1016)  # 2550 × 5000 / 12550 = 1015.9
    assert proportional_vat(7550, original, 5000, 1016) == (6016, 1534)  # the rest


def test_refunds_beyond_what_remains_are_refused() -> None:
    original = b2c("DE")
    with pytest.raises(ValueError):
        proportional_vat(0, original)
    with pytest.raises(ValueError):
        proportional_vat(original.total + 1, original)
    with pytest.raises(ValueError):
        proportional_vat(100, original, original.total, original.vat)
    with pytest.raises(ValueError):
        proportional_vat(100, original, 0, original.vat + 1)


def test_reverse_charge_refund_has_no_vat() -> None:
    original = b2c("DE", customer_type="business", vat_id=VALID_IDS["DE"])
    assert proportional_vat(4000, original) == (4000, 0)


def test_country_must_be_an_assigned_iso_3166_code() -> None:
    # Issue 14 item 12: any two letters used to pass.  python-stdnum's list is the oracle (it still carries the
    # withdrawn AN and CS, which are refused here).
    from stdnum import isin

    from engine.domain.vat import VatError, normalize_country
    from engine.domain.vat.countries import ISO_3166_1_ALPHA_2

    assert set(isin._iso_3116_1_country_codes) - ISO_3166_1_ALPHA_2 == {"AN", "CS"}
    assert len(ISO_3166_1_ALPHA_2) == 249
    for code in ("ie", "DE", " us ", "EL", "gr"):
        normalize_country(code)
    for code in ("ZZ", "XX", "UK", "AN", "CS", "XK", "QQ", "AA", "E1", "ＤＥ"):
        with pytest.raises(VatError):
            normalize_country(code)
