"""EU VAT: the rate in force on a date, the place of supply, and the amounts in integer minor units.

Rates come from ``config/vat_rates.json`` (27 member states, each a list of periods with the date they took
effect); the file is loaded and validated when this module is imported, so a malformed file stops the process
at start with :class:`VatDataError` instead of mis-taxing a payment later.

The decision (contract, "Decisions → VAT"; docs/vat.md has the table):

* customer outside the EU → ``outside_scope``, rate 0;
* ``business`` with a VAT id that passes python-stdnum's format and check-digit test → ``domestic`` at the
  seller's rate in the seller's state, else ``reverse_charge`` at 0 (the customer accounts for the VAT);
* everyone else is B2C (a ``business`` without a valid id gets the note ``vat_id_invalid``): ``domestic`` in the
  seller's state; in another state ``oss`` at the customer's rate when ``PAYMENTS_VAT_OSS`` is true or the
  seller's cross-border B2C total is over EUR 10,000, else ``domestic`` at the seller's rate;
* a VAT id whose country prefix is not the customer's country is refused (:class:`VatIdCountryMismatch`, 422 at
  the ingest); Greece uses the prefix ``EL`` and the country ``GR``, and both spellings are accepted for both.

Amounts: ``exclusive`` adds VAT on top (``vat = round_half_up(net × rate / 100)``), ``inclusive`` extracts it
(``net = round_half_up(total × 100 / (100 + rate))``, ``vat = total − net``), exactly (Fractions, never floats);
for three-decimal currencies the VAT is a multiple of 10 (for ISK of 100) so that every amount stays chargeable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, get_args

from stdnum.eu import vat as stdnum_vat

from engine.domain.money import currency as _currency
from engine.domain.money import round_half_up_to
from engine.errors import InvalidInput

__all__ = [
    "EU_MEMBER_STATES",
    "OSS_THRESHOLD_EUR_CENTS",
    "RATES",
    "VAT_RATES_PATH",
    "Category",
    "CustomerType",
    "MemberState",
    "RatePeriod",
    "Scheme",
    "TaxBehavior",
    "VatDataError",
    "VatError",
    "VatIdCheck",
    "VatIdCountryMismatch",
    "VatRateUnavailable",
    "VatRates",
    "VatResult",
    "assess_vat",
    "check_vat_id",
    "compute_amounts",
    "format_rate",
    "is_eu",
    "load_rates",
    "normalize_country",
    "proportional_vat",
    "rate_for",
]

Category = Literal["standard", "reduced", "super_reduced"]
Scheme = Literal["domestic", "oss", "reverse_charge", "outside_scope"]
CustomerType = Literal["consumer", "business"]
TaxBehavior = Literal["exclusive", "inclusive"]

_EU = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
EU_MEMBER_STATES: frozenset[str] = frozenset(_EU.split())
# Art. 59c of the VAT Directive: EUR 10,000 of cross-border B2C supplies, in euro cents.
OSS_THRESHOLD_EUR_CENTS = 1_000_000

VAT_RATES_PATH = Path(__file__).resolve().parents[2] / "config" / "vat_rates.json"

# Country codes that mean another one: Greece's VAT prefix, and Northern Ireland's (a UK territory) for VAT ids.
_COUNTRY_ALIASES = {"EL": "GR"}
_VAT_PREFIX_COUNTRY = {"EL": "GR", "XI": "GB"}
_ZERO = Decimal(0)


class VatError(InvalidInput):
    """Base class of this module's errors."""


class VatDataError(VatError):
    """``config/vat_rates.json`` is missing or malformed; the message names the file and the offending entry."""


class VatRateUnavailable(VatError):
    """No rate for the country on that date: not an EU member state, or a date before the data's coverage."""


class VatIdCountryMismatch(VatError):
    """The VAT id's country prefix is not the customer's country.  The ingest answers 422 with ``code`` and
    ``param``; the message never repeats the id."""

    code = "vat_id_country_mismatch"
    param = "customer.vat_id"

    def __init__(self, prefix: str, country: str) -> None:
        super().__init__(f"the VAT id is from {prefix} but the customer's country is {country}")
        self.prefix = prefix
        self.country = country


@dataclass(frozen=True, slots=True)
class RatePeriod:
    """The rates of one member state from ``start`` until the next period starts."""

    start: date
    standard: Decimal
    reduced: tuple[Decimal, ...]
    super_reduced: Decimal | None

    def rate(self, category: Category) -> Decimal:
        """The rate of a category: ``reduced`` is the highest reduced rate, ``super_reduced`` the super-reduced
        rate or else the lowest reduced rate; without either the standard rate.  Raises :class:`ValueError` for
        an unknown category."""
        if category == "standard":
            return self.standard
        if category == "reduced":
            return max(self.reduced) if self.reduced else self.standard
        if category == "super_reduced":
            if self.super_reduced is not None:
                return self.super_reduced
            return min(self.reduced) if self.reduced else self.standard
        raise ValueError(f"unknown tax category {category!r} (one of {', '.join(get_args(Category))})")


@dataclass(frozen=True, slots=True)
class MemberState:
    """A member state: ISO code (``GR`` for Greece), name, VAT id prefix (``EL``) and its rate periods, oldest
    first."""

    code: str
    name: str
    vat_prefix: str
    periods: tuple[RatePeriod, ...]

    def period_at(self, at: date) -> RatePeriod:
        """The period in force on ``at``.  Raises :class:`VatRateUnavailable` before the first period."""
        found: RatePeriod | None = None
        for period in self.periods:
            if period.start > at:
                break
            found = period
        if found is None:
            raise VatRateUnavailable(f"no VAT rates for {self.code} before {self.periods[0].start.isoformat()}")
        return found


@dataclass(frozen=True, slots=True)
class VatRates:
    """The loaded rate table: every member state by ISO code, and where the data came from."""

    states: Mapping[str, MemberState]
    coverage_from: date
    sources: tuple[str, ...]
    path: str

    def state(self, country: str) -> MemberState:
        """The member state for a country code (either case, ``EL`` accepted).  Raises
        :class:`VatRateUnavailable` for a country outside the EU."""
        cc = normalize_country(country)
        found = self.states.get(cc)
        if found is None:
            raise VatRateUnavailable(f"{cc} is not an EU member state")
        return found

    def rate(self, country: str, category: Category, at: date) -> Decimal:
        """Same as :func:`rate_for` on this table."""
        return self.state(country).period_at(_as_date(at)).rate(category)


@dataclass(frozen=True, slots=True)
class VatIdCheck:
    """A VAT id after :func:`check_vat_id`: ``number`` compacted with its country prefix, ``valid`` when it
    passes python-stdnum's format and check-digit test."""

    number: str
    valid: bool


@dataclass(frozen=True, slots=True)
class VatResult:
    """The VAT of one payment.

    ``country`` is the state whose VAT applies (upper case; for ``reverse_charge`` and ``outside_scope`` the
    customer's), ``rate`` the percentage as the contract renders it (``"23"``, ``"25.5"``, ``"0"``), amounts in
    minor units of ``currency`` (lower case) with ``net + vat == total``; ``notes`` explain the decision
    (``vat_id_invalid``, ``vat_id_missing``, ``below_oss_threshold``, ``oss_threshold_exceeded``).
    """

    country: str
    rate: str
    scheme: Scheme
    net: int
    vat: int
    total: int
    currency: str
    notes: tuple[str, ...] = ()

    def vat_block(self) -> dict[str, str]:
        """The job's ``vat`` object: ``{"country", "rate", "scheme"}``."""
        return {"country": self.country, "rate": self.rate, "scheme": self.scheme}

    def amounts_block(self) -> dict[str, int | str]:
        """The job's ``amounts`` object: ``{"net", "vat", "total", "currency"}``."""
        return {"net": self.net, "vat": self.vat, "total": self.total, "currency": self.currency}


# -- loading ------------------------------------------------------------------------------------------------------


def load_rates(path: str | Path | None = None) -> VatRates:
    """Read and validate a rates file (default ``config/vat_rates.json``).

    Checks: exactly the 27 member states; each with a name, a two-letter VAT prefix and at least one period;
    the first period of every state starts on ``coverage_from``; periods strictly in date order; rates are
    decimal strings with standard in 15–30 %, reduced rates below standard, a super-reduced rate below 5 % and
    below every reduced rate.  Raises :class:`VatDataError` naming the file and the entry otherwise.
    """
    file = Path(path) if path is not None else VAT_RATES_PATH
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VatDataError(f"{file}: cannot read VAT rates: {exc}") from exc
    try:
        return _parse(raw, str(file))
    except VatDataError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VatDataError(f"{file}: malformed VAT rates: {exc!r}") from exc


def _parse(raw: Any, where: str) -> VatRates:
    def fail(msg: str) -> VatDataError:
        return VatDataError(f"{where}: {msg}")

    if not isinstance(raw, dict):
        raise fail("the top level must be an object")
    coverage_from = _parse_date(raw.get("coverage_from"), "coverage_from", fail)
    states_raw = raw.get("states")
    if not isinstance(states_raw, dict):
        raise fail("'states' must be an object keyed by country code")
    missing = EU_MEMBER_STATES - states_raw.keys()
    extra = states_raw.keys() - EU_MEMBER_STATES
    if missing or extra:
        raise fail(f"'states' must hold exactly the 27 member states; missing {sorted(missing)}, extra {sorted(extra)}")
    states: dict[str, MemberState] = {}
    for code, entry in sorted(states_raw.items()):
        ctx = f"states.{code}"
        if not isinstance(entry, dict):
            raise fail(f"{ctx} must be an object")
        name = entry.get("name")
        prefix = entry.get("vat_prefix")
        if not isinstance(name, str) or not name:
            raise fail(f"{ctx}.name must be a non-empty string")
        if not isinstance(prefix, str) or len(prefix) != 2 or not prefix.isalpha() or not prefix.isupper():
            raise fail(f"{ctx}.vat_prefix must be two upper-case letters")
        periods_raw = entry.get("periods")
        if not isinstance(periods_raw, list) or not periods_raw:
            raise fail(f"{ctx}.periods must be a non-empty list")
        periods: list[RatePeriod] = []
        for i, p in enumerate(periods_raw):
            pctx = f"{ctx}.periods[{i}]"
            if not isinstance(p, dict):
                raise fail(f"{pctx} must be an object")
            start = _parse_date(p.get("from"), f"{pctx}.from", fail)
            standard = _parse_rate(p.get("standard"), f"{pctx}.standard", fail)
            reduced_raw = p.get("reduced")
            if not isinstance(reduced_raw, list):
                raise fail(f"{pctx}.reduced must be a list (empty when the state has no reduced rate)")
            reduced = tuple(sorted(_parse_rate(r, f"{pctx}.reduced", fail) for r in reduced_raw))
            sr_raw = p.get("super_reduced")
            super_reduced = None if sr_raw is None else _parse_rate(sr_raw, f"{pctx}.super_reduced", fail)
            if not Decimal(15) <= standard <= Decimal(30):
                raise fail(f"{pctx}.standard {standard} is outside 15–30 %")
            if len(set(reduced)) != len(reduced) or any(not _ZERO < r < standard for r in reduced):
                raise fail(f"{pctx}.reduced must be distinct rates above 0 and below the standard rate")
            if super_reduced is not None and not (
                _ZERO < super_reduced < Decimal(5) and all(super_reduced < r for r in reduced)
            ):
                raise fail(f"{pctx}.super_reduced must be above 0, below 5 % and below every reduced rate")
            if periods and start <= periods[-1].start:
                raise fail(f"{pctx}.from must come after the previous period's")
            periods.append(RatePeriod(start, standard, reduced, super_reduced))
        if periods[0].start != coverage_from:
            raise fail(f"{ctx}: the first period must start on coverage_from ({coverage_from.isoformat()})")
        states[code] = MemberState(code=code, name=name, vat_prefix=prefix, periods=tuple(periods))
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
        raise fail("'sources' must be a non-empty list of strings: say where the rates come from")
    return VatRates(states=states, coverage_from=coverage_from, sources=tuple(sources), path=where)


def _parse_date(value: Any, ctx: str, fail: Any) -> date:
    if not isinstance(value, str):
        raise fail(f"{ctx} must be an ISO date string")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{ctx} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _parse_rate(value: Any, ctx: str, fail: Any) -> Decimal:
    # Strings only: a JSON number would go through float on the way in and 25.5 must stay exactly 25.5.
    if not isinstance(value, str):
        raise fail(f'{ctx} must be a decimal string such as "23" or "25.5", got {value!r}')
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise fail(f"{ctx} {value!r} is not a decimal number") from None
    if not rate.is_finite() or rate < 0 or rate.as_tuple().exponent < -2:  # type: ignore[operator]
        raise fail(f"{ctx} {value!r} must be a finite, non-negative percentage with at most two decimals")
    return rate


RATES: VatRates = load_rates()


# -- lookups ------------------------------------------------------------------------------------------------------


def normalize_country(country: str) -> str:
    """An ISO 3166 alpha-2 code in upper case, with Greece's VAT prefix ``EL`` read as ``GR``.

    Raises :class:`VatError` for anything that is not two ASCII letters.
    """
    if not isinstance(country, str):
        raise VatError(f"country must be a string, got {type(country).__name__}")
    cc = country.strip().upper()
    if len(cc) != 2 or not cc.isascii() or not cc.isalpha():
        raise VatError(f"country must be an ISO 3166 alpha-2 code, got {country!r}")
    return _COUNTRY_ALIASES.get(cc, cc)


def is_eu(country: str) -> bool:
    """True when ``country`` (either case, ``EL`` accepted) is one of the 27 member states."""
    return normalize_country(country) in EU_MEMBER_STATES


def rate_for(
    country: str, category: Category = "standard", at: date | None = None, *, rates: VatRates = RATES
) -> Decimal:
    """The VAT rate (percent) of ``category`` in ``country`` in force on ``at`` (default: today, UTC).

    A ``datetime`` is read as its UTC date.  Raises :class:`VatRateUnavailable` for a country outside the EU or a
    date before the data's coverage, :class:`ValueError` for an unknown category.
    """
    return rates.rate(country, category, _as_date(at if at is not None else datetime.now(UTC)))


def format_rate(rate: Decimal) -> str:
    """A rate as the contract renders it: ``Decimal("23.0")`` → ``"23"``, ``Decimal("25.50")`` → ``"25.5"``,
    ``0`` → ``"0"``."""
    if rate == 0:
        return "0"
    return format(rate.normalize(), "f")


def check_vat_id(vat_id: str, customer_country: str) -> VatIdCheck:
    """Compact a VAT id and test it with python-stdnum (format and check digits, no VIES call).

    An id without a country prefix takes the customer's (``EL`` for Greece).  Raises
    :class:`VatIdCountryMismatch` when the id's prefix names another country than ``customer_country`` (``EL``
    and ``GR`` both mean Greece; ``XI`` means the United Kingdom), and :class:`VatError` for a malformed country.
    """
    country = normalize_country(customer_country)
    try:
        number = stdnum_vat.compact(vat_id)
    except Exception:  # stdnum raises its own ValidationError subclasses on garbage
        number = "".join(ch for ch in str(vat_id).upper() if ch.isalnum())
    prefix = number[:2]
    if len(prefix) == 2 and prefix.isascii() and prefix.isalpha():
        prefix_country = _VAT_PREFIX_COUNTRY.get(prefix, prefix)
        if prefix_country != country:
            raise VatIdCountryMismatch(prefix, country)
    else:
        own_prefix = RATES.states[country].vat_prefix if country in RATES.states else country
        number = own_prefix + number
    return VatIdCheck(number=number, valid=bool(number) and stdnum_vat.is_valid(number))


# -- amounts ------------------------------------------------------------------------------------------------------


def compute_amounts(amount: int, currency: str, rate: Decimal, tax_behavior: TaxBehavior) -> tuple[int, int, int]:
    """``(net, vat, total)`` in minor units for ``amount`` at ``rate`` percent.

    ``exclusive``: ``amount`` is the net and the VAT is added, rounded half up.  ``inclusive``: ``amount`` is the
    total and the net is extracted, rounded half up; the VAT is the rest.  In a currency whose amounts go in
    steps (10 for three-decimal currencies, 100 for ISK) the VAT is rounded to a multiple of the step.
    Raises :class:`ValueError` for a negative or non-integer amount, a negative rate or an unknown behaviour,
    :class:`~engine.domain.money.UnknownCurrency` for an unsupported currency.
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"amount must be a non-negative int of minor units, got {amount!r}")
    if rate < 0:
        raise ValueError(f"rate must be non-negative, got {rate}")
    step = _currency(currency).step
    r = Fraction(rate)
    if tax_behavior == "exclusive":
        vat = round_half_up_to(amount * r / 100, step)
        return amount, vat, amount + vat
    if tax_behavior == "inclusive":
        # net = round_half_up(total * 100 / (100 + r)) ⇔ vat = the VAT share rounded with ties *down*; working on
        # the VAT lets a stepped currency keep its VAT a multiple of the step.
        vat = _round_half_down_to(amount * r / (100 + r), step)
        return amount - vat, vat, amount
    raise ValueError(f"tax_behavior must be 'exclusive' or 'inclusive', got {tax_behavior!r}")


def assess_vat(
    *,
    amount: int,
    currency: str,
    seller_country: str,
    customer_country: str,
    customer_type: CustomerType = "consumer",
    vat_id: str | None = None,
    tax_behavior: TaxBehavior = "exclusive",
    tax_category: Category = "standard",
    at: date,
    oss: bool = True,
    cross_border_b2c_eur_cents: int = 0,
    rates: VatRates = RATES,
) -> VatResult:
    """Decide where and at what rate one payment is taxed, and split it into net, VAT and total.

    ``at`` is the job's acceptance time (a ``datetime`` is read as its UTC date).  ``oss`` is
    ``PAYMENTS_VAT_OSS``.  ``cross_border_b2c_eur_cents`` is the seller's cross-border EU B2C sales of this and
    the last calendar year in euro cents, computed by the caller; when ``oss`` is false, B2C sales to other states
    are taxed at the seller's rate until it exceeds EUR 10,000 (callers that include the current payment get the
    Directive's rule that the sale crossing the threshold is already taxed at destination).

    Raises :class:`VatIdCountryMismatch` (422 at the ingest), :class:`VatError` for a malformed country, a seller
    outside the EU or an unknown customer type, :class:`VatRateUnavailable` for a date before the rates'
    coverage, :class:`ValueError` for bad amounts, rates or behaviours, and
    :class:`~engine.domain.money.UnknownCurrency`.
    """
    cur = _currency(currency).code
    seller = normalize_country(seller_country)
    customer = normalize_country(customer_country)
    if seller not in EU_MEMBER_STATES:
        raise VatError(f"the seller's country must be an EU member state, got {seller}")
    if customer_type not in ("consumer", "business"):
        raise VatError(f"customer type must be 'consumer' or 'business', got {customer_type!r}")
    day = _as_date(at)
    notes: list[str] = []

    # A VAT id that contradicts the customer's country is a request error whatever else is decided.
    id_check = check_vat_id(vat_id, customer) if vat_id else None

    def result(country: str, rate: Decimal, scheme: Scheme) -> VatResult:
        net, vat, total = compute_amounts(amount, cur, rate, tax_behavior)
        return VatResult(country, format_rate(rate), scheme, net, vat, total, cur, tuple(notes))

    if customer not in EU_MEMBER_STATES:
        return result(customer, _ZERO, "outside_scope")

    if customer_type == "business":
        if id_check is not None and id_check.valid:
            if customer == seller:
                return result(seller, rates.rate(seller, tax_category, day), "domestic")
            return result(customer, _ZERO, "reverse_charge")
        notes.append("vat_id_invalid")
        if id_check is None:
            notes.append("vat_id_missing")

    if customer == seller:
        return result(seller, rates.rate(seller, tax_category, day), "domestic")
    if not oss:
        if cross_border_b2c_eur_cents <= OSS_THRESHOLD_EUR_CENTS:
            notes.append("below_oss_threshold")
            return result(seller, rates.rate(seller, tax_category, day), "domestic")
        notes.append("oss_threshold_exceeded")
    return result(customer, rates.rate(customer, tax_category, day), "oss")


def proportional_vat(
    refund_total: int, original: VatResult, already_refunded_total: int = 0, already_refunded_vat: int = 0
) -> tuple[int, int]:
    """``(net, vat)`` of a refund of ``refund_total`` against ``original``, in proportion to its VAT.

    Cumulative rounding: after this refund the VAT refunded so far is ``round_half_up(original.vat × refunded
    so far / original.total)`` (to the currency's step), so the refund that brings the refunded total to
    ``original.total`` takes exactly the VAT that remains and every partial refund's VAT lies between 0 and its
    amount.  Raises :class:`ValueError` for a refund of 0 or less or above what remains, or inconsistent
    ``already_refunded_*`` figures.
    """
    remaining = original.total - already_refunded_total
    vat_left = original.vat - already_refunded_vat
    if not 0 <= already_refunded_total <= original.total or not 0 <= already_refunded_vat <= original.vat:
        raise ValueError("already refunded figures are outside the original payment's")
    if refund_total <= 0 or refund_total > remaining:
        raise ValueError(f"refund of {refund_total} is outside 1..{remaining} (what remains of the payment)")
    if refund_total == remaining:
        vat = vat_left
    else:
        step = _currency(original.currency).step
        cumulative = round_half_up_to(
            Fraction(original.vat * (already_refunded_total + refund_total), original.total), step
        )
        vat = min(max(cumulative - already_refunded_vat, 0), vat_left, refund_total)
    net = refund_total - vat
    if net < 0:
        raise ValueError("already refunded figures leave more VAT than amount to refund")
    return net, vat


def _round_half_down_to(value: Fraction, step: int) -> int:
    """The nearest multiple of ``step`` to a non-negative ``value``, ties down."""
    scaled = value / step
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest > scaled.denominator:
        whole += 1
    return whole * step


def _as_date(at: date | datetime) -> date:
    if isinstance(at, datetime):
        if at.tzinfo is not None:
            at = at.astimezone(UTC)
        return at.date()
    if isinstance(at, date):
        return at
    raise TypeError(f"expected a date or datetime, got {type(at).__name__}")
