"""What a ledger transaction sold or refunded, and under which VAT scheme and rate.

A **sale** is a transaction that moves ``revenue``: its taxable amount is the revenue credited (``-Σ revenue``),
its VAT the ``vat_payable:{CC}`` credited.  A **refund** moves ``refunds`` (its net) and debits
``vat_payable:{CC}`` (its VAT).  Amounts come from the postings; the scheme and rate from the metadata the ledger
builders write (``vat_scheme``, ``vat_rate``, since these reports exist).

Older transactions have no ``vat_scheme``/``vat_rate``; their terms are *inferred* from the postings and the
metadata's ``vat_country`` (docs/reports.md): VAT charged to the seller's country is domestic, to another member
state OSS; no VAT to a country outside the EU is outside scope, to the seller's own country domestic, to another
member state reverse charge.  An OSS sale's rate is then the one rate of that state in force on the booking day
(``config/vat_rates.json``) that reproduces its net and VAT, exclusive or inclusive; when none or several do,
the rate stays unknown (``None``) and the return lists it so, rather than guessing.  POS settlements book gross
revenue without a VAT split: domestic.  Any other transaction moving revenue is ``other``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from engine.domain.ledger import REFUNDS, REVENUE, Posting
from engine.domain.vat import (
    VatError,
    compute_amounts,
    format_rate,
    is_eu,
    normalize_country,
    shipped_vat_rates,
)
from engine.reports.ledger_reader import BookedTransaction

Scheme = Literal["oss", "domestic", "reverse_charge", "outside_scope", "other"]
Terms = Literal["recorded", "inferred", "unknown"]
SCHEMES: tuple[Scheme, ...] = ("oss", "domestic", "reverse_charge", "outside_scope", "other")
VAT_PAYABLE = "vat_payable:"


@dataclass(frozen=True, slots=True)
class Sale:
    """The revenue one transaction booked in one currency: ``net`` (taxable) and ``vat`` in minor units, the
    state whose VAT applies (``country``), the ``scheme``, the ``rate`` (percent, ``None`` when unknown) and
    where scheme and rate came from (``terms``)."""

    transaction: BookedTransaction
    currency: str
    net: int
    vat: int
    country: str | None
    scheme: Scheme
    rate: str | None
    terms: Terms


@dataclass(frozen=True, slots=True)
class Refund:
    """What one transaction refunded in one currency: ``net`` (debited to ``refunds``) and ``vat`` (debited to
    ``vat_payable:{country}``), and the payment job it refunds (``payment``, when the metadata names it)."""

    transaction: BookedTransaction
    currency: str
    net: int
    vat: int
    country: str | None
    payment: str | None


def sales_in(txn: BookedTransaction, seller_country: str) -> list[Sale]:
    """The sales ``txn`` booked, one per currency whose revenue it moved (none for a transaction without
    revenue postings)."""
    out = []
    for cur in txn.currencies:
        net = -txn.total(REVENUE, cur)
        vat_lines = [p for p in txn.postings if p.currency == cur and p.account.startswith(VAT_PAYABLE)]
        if net == 0 and not any(p.amount < 0 for p in vat_lines):
            continue
        vat = -sum(p.amount for p in vat_lines if p.amount < 0)
        country = _country(txn, vat_lines)
        scheme, rate, terms = _terms(txn, cur, net, vat, country, seller_country)
        out.append(Sale(txn, cur, net, vat, country, scheme, rate, terms))
    return out


def refunds_in(txn: BookedTransaction) -> list[Refund]:
    """The refunds ``txn`` booked, one per currency whose ``refunds`` account or VAT it debited."""
    out = []
    for cur in txn.currencies:
        net = txn.total(REFUNDS, cur)
        vat_lines = [p for p in txn.postings if p.currency == cur and p.account.startswith(VAT_PAYABLE)]
        vat = sum(p.amount for p in vat_lines if p.amount > 0)
        if net == 0 and vat == 0:
            continue
        payment = txn.metadata.get("payment")
        out.append(Refund(txn, cur, net, vat, _country(txn, vat_lines), str(payment) if payment else None))
    return out


def _country(txn: BookedTransaction, vat_lines: Sequence[Posting]) -> str | None:
    recorded = txn.metadata.get("vat_country")
    if isinstance(recorded, str) and recorded:
        return recorded.upper()
    accounts = {p.account for p in vat_lines}
    if len(accounts) == 1:
        return next(iter(accounts)).split(":", 1)[1]
    return None


def _terms(
    txn: BookedTransaction, cur: str, net: int, vat: int, country: str | None, seller_country: str
) -> tuple[Scheme, str | None, Terms]:
    scheme = txn.metadata.get("vat_scheme")
    rate = txn.metadata.get("vat_rate")
    if scheme in SCHEMES:
        if scheme != "oss":
            return scheme, rate if isinstance(rate, str) else None, "recorded"
        if isinstance(rate, str):
            return "oss", rate, "recorded"
        inferred = infer_rate(country, cur, net, vat, txn)
        return "oss", inferred, "inferred" if inferred else "unknown"
    if txn.kind == "settlement":
        return "domestic", None, "inferred"
    if txn.kind not in ("payment", "subscription") or country is None:
        return "other", None, "unknown"
    guessed = infer_scheme(country, vat, seller_country)
    if guessed != "oss":
        return guessed, "0" if vat == 0 else None, "inferred"
    inferred = infer_rate(country, cur, net, vat, txn)
    return "oss", inferred, "inferred" if inferred else "unknown"


def infer_scheme(country: str, vat: int, seller_country: str) -> Scheme:
    """The scheme of an older sale from where its VAT went (see the module's docstring)."""
    try:
        cc, seller = normalize_country(country), normalize_country(seller_country)
    except VatError:
        return "other"
    if vat > 0:
        if cc == seller:
            return "domestic"
        return "oss" if is_eu(cc) else "other"
    if not is_eu(cc):
        return "outside_scope"
    return "domestic" if cc == seller else "reverse_charge"


def infer_rate(country: str | None, cur: str, net: int, vat: int, txn: BookedTransaction) -> str | None:
    """The one rate of ``country`` in force on the booking day whose exclusive or inclusive computation gives
    exactly ``net`` and ``vat``; None when no rate or more than one does."""
    if country is None or net < 0 or vat < 0:
        return None
    try:
        period = shipped_vat_rates().state(country).period_at(txn.booked_at.date())
    except VatError:
        return None
    candidates: set[Decimal] = {period.standard, *period.reduced}
    if period.super_reduced is not None:
        candidates.add(period.super_reduced)
    matching = set()
    for rate in candidates:
        try:
            exclusive = compute_amounts(net, cur, rate, "exclusive")
            inclusive = compute_amounts(net + vat, cur, rate, "inclusive")
        except ValueError:
            return None
        if exclusive[:2] == (net, vat) or inclusive[:2] == (net, vat):
            matching.add(rate)
    return format_rate(matching.pop()) if len(matching) == 1 else None
