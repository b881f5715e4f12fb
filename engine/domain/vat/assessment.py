"""EU VAT assessment: the place of supply, the rate that applies, and the amounts in integer minor units.

Pure: the rates come in as a :class:`~engine.domain.vat.rates.VatRates` (loaded once per process by the caller).
The decision (``docs/vat.md`` has the table; the API's ``vat`` object is in ``docs/api.md``):

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

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from engine.domain.money import currency as _currency
from engine.domain.money import round_half_up_to
from engine.domain.vat.countries import EU_MEMBER_STATES, normalize_country
from engine.domain.vat.errors import VatError
from engine.domain.vat.rates import Category, VatRates, format_rate, utc_date
from engine.domain.vat.vat_ids import check_vat_id

Scheme = Literal["domestic", "oss", "reverse_charge", "outside_scope"]
CustomerType = Literal["consumer", "business"]
TaxBehavior = Literal["exclusive", "inclusive"]

# Art. 59c of the VAT Directive: EUR 10,000 of cross-border B2C supplies, in euro cents.
OSS_THRESHOLD_EUR_CENTS = 1_000_000
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class VatResult:
    """The VAT of one payment.

    ``country`` is the state whose VAT applies (upper case; for ``reverse_charge`` and ``outside_scope`` the
    customer's), ``rate`` the percentage as the API renders it (``"23"``, ``"25.5"``, ``"0"``), amounts in
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
    rates: VatRates,
) -> VatResult:
    """Decide where and at what rate one payment is taxed, and split it into net, VAT and total.

    ``rates`` is the rate table (:func:`~engine.domain.vat.rates.load_vat_rates`).  ``at`` is the job's acceptance
    time (a ``datetime`` is read as its UTC date).  ``oss`` is
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
    day = utc_date(at)
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
