"""The ledger's transactions as plain values: postings that balance per currency, and the standard ones.

Double entry in minor units (``docs/ledger.md``, "Conventions"): a posting's ``amount`` is a debit when positive and a
credit when negative, never zero, and the postings of one transaction sum to zero in every currency.  A
:class:`LedgerTransaction` cannot be built otherwise, and the database refuses to commit one that is not (migration
``0002``); both checks exist so that a bug is caught in Python with a clear message, and a writer that bypasses Python
is still refused.

Each transaction books one *effect* (``payment:{job_id}:capture``): its ``effect_key`` is unique in the ledger, so
a stage redone after a crash books nothing twice.  The chart of accounts is documented in ``docs/ledger.md``.
This module does no I/O; :mod:`engine.db.ledger` writes and reads transactions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidInput

# Kinds of ledger transaction; ``engine.db.tables.LEDGER_KINDS`` and migration 0002 list the same.
LEDGER_KINDS = ("payment", "refund", "subscription", "settlement", "fee", "adjustment")

# Accounts of the chart (docs/ledger.md).  Parameterised ones take ``:{id}``.
STRIPE_CLEARING = "stripe_clearing"
REVENUE = "revenue"
REFUNDS = "refunds"
FEES = "fees"
DISPUTE_LOSSES = "dispute_losses"

# amount is a PostgreSQL bigint.
_MAX_AMOUNT = 2**63 - 1
_CURRENCY = re.compile(r"^[a-z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_MAX_BPS = 10_000
_RATE = re.compile(r"^[0-9]{1,2}(\.[0-9]{1,2})?$")
#: The VAT schemes of engine.domain.vat, as a sale's metadata records them.
VAT_SCHEMES = ("domestic", "oss", "reverse_charge", "outside_scope")


class UnbalancedTransaction(InvalidInput):
    """A ledger transaction (or one of its postings) that cannot be booked: unbalanced in some currency, fewer
    than two postings, a zero or non-integer amount, or a malformed account, currency or effect key."""


def receivable(customer_id: str) -> str:
    """The account of what ``customer_id`` owes: ``receivable:{customer_id}``."""
    return _param_account("receivable", customer_id)


def vat_payable(country: str) -> str:
    """The account of VAT owed to ``country``'s tax authority: ``vat_payable:{CC}`` (upper case; Greece's ``EL``
    prefix is booked as ``GR`` so that Greece has one account)."""
    cc = country.strip().upper()
    cc = "GR" if cc == "EL" else cc
    if not _COUNTRY.match(cc):
        raise ValueError(f"VAT country must be an ISO 3166 alpha-2 code, got {country!r}")
    return f"vat_payable:{cc}"


def customer_credit(customer_id: str) -> str:
    """The account of credit ``customer_id`` holds against later invoices (a liability; a downgrade's credit
    note): ``customer_credit:{customer_id}``, one balance per currency."""
    return _param_account("customer_credit", customer_id)


def pos_clearing(terminal_id: str) -> str:
    """The account of money a POS terminal's acquirer owes: ``pos_clearing:{terminal_id}``."""
    return _param_account("pos_clearing", terminal_id)


def _param_account(prefix: str, ident: str) -> str:
    if not isinstance(ident, str) or not ident or ident != ident.strip():
        raise ValueError(f"{prefix} needs a non-empty id without surrounding spaces, got {ident!r}")
    return f"{prefix}:{ident}"


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of a transaction: ``amount`` minor units of ``currency`` on ``account``; debit > 0, credit < 0.

    ``currency`` is accepted in either case and kept lower case.  Raises :class:`UnbalancedTransaction` for a
    zero, non-integer (float, Decimal, bool) or out-of-bigint-range amount, a currency that is not three letters,
    or an empty account.
    """

    account: str
    currency: str
    amount: int

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not self.account or self.account != self.account.strip():
            raise UnbalancedTransaction(f"a posting needs a non-empty account name, got {self.account!r}")
        currency = self.currency.lower() if isinstance(self.currency, str) else ""
        if not _CURRENCY.match(currency):
            raise UnbalancedTransaction(f"currency must be an ISO 4217 code, got {self.currency!r}")
        object.__setattr__(self, "currency", currency)
        # bool is an int subclass; a float or Decimal means someone did arithmetic outside minor units.
        if type(self.amount) is not int:
            raise UnbalancedTransaction(
                f"amount must be an integer count of minor units, got {type(self.amount).__name__} {self.amount!r}"
            )
        if self.amount == 0:
            raise UnbalancedTransaction(f"a posting on {self.account} must not be zero")
        if abs(self.amount) > _MAX_AMOUNT:
            raise UnbalancedTransaction(f"amount {self.amount} on {self.account} exceeds the ledger's range")


def debit(account: str, currency: str, amount: int) -> Posting:
    """A debit of ``amount`` (> 0) minor units.  Raises :class:`UnbalancedTransaction` when ``amount`` <= 0."""
    if type(amount) is int and amount < 0:
        raise UnbalancedTransaction(f"debit({account}) takes a positive amount, got {amount}")
    return Posting(account, currency, amount)


def credit(account: str, currency: str, amount: int) -> Posting:
    """A credit of ``amount`` (> 0) minor units, stored negative.  Raises :class:`UnbalancedTransaction` when
    ``amount`` <= 0 or is not an int."""
    if type(amount) is not int or amount < 0:
        raise UnbalancedTransaction(f"credit({account}) takes a positive integer amount, got {amount!r}")
    return Posting(account, currency, -amount)


@dataclass(frozen=True)
class LedgerTransaction:
    """A balanced set of postings booking one effect.

    Construction validates: ``effect_key`` non-empty, ``kind`` one of :data:`LEDGER_KINDS`, at least two postings,
    each a :class:`Posting`, summing to zero in every currency.  Raises :class:`UnbalancedTransaction` otherwise.
    ``metadata`` must be JSON-serialisable (it is stored as jsonb); it is not deep-checked here.
    """

    effect_key: str
    kind: str
    postings: tuple[Posting, ...]
    job_id: str | None = None
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.effect_key, str) or not self.effect_key.strip():
            raise UnbalancedTransaction(f"a ledger transaction needs an effect key, got {self.effect_key!r}")
        if self.kind not in LEDGER_KINDS:
            raise UnbalancedTransaction(f"kind must be one of {', '.join(LEDGER_KINDS)}, got {self.kind!r}")
        postings = tuple(self.postings)
        object.__setattr__(self, "postings", postings)
        if not all(isinstance(p, Posting) for p in postings):
            raise UnbalancedTransaction(f"{self.effect_key}: postings must be Posting values")
        if len(postings) < 2:
            raise UnbalancedTransaction(
                f"{self.effect_key}: a transaction needs at least 2 postings, got {len(postings)}"
            )
        unbalanced = {c: s for c, s in totals_by_currency(postings).items() if s != 0}
        if unbalanced:
            detail = ", ".join(f"{c} {s:+d}" for c, s in sorted(unbalanced.items()))
            raise UnbalancedTransaction(f"{self.effect_key}: postings do not sum to zero per currency ({detail})")

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies the transaction moves, sorted."""
        return tuple(sorted({p.currency for p in self.postings}))

    def same_postings(self, other: Iterable[Posting]) -> bool:
        """True when ``other`` holds the same postings, in any order (how a replayed effect is recognised)."""
        key = _posting_sort_key
        return sorted(self.postings, key=key) == sorted(other, key=key)


def _posting_sort_key(p: Posting) -> tuple[str, str, int]:
    return (p.account, p.currency, p.amount)


def totals_by_currency(postings: Iterable[Posting]) -> dict[str, int]:
    """Sum of the amounts per currency (zero for every currency of a balanced transaction)."""
    totals: dict[str, int] = {}
    for p in postings:
        totals[p.currency] = totals.get(p.currency, 0) + p.amount
    return totals


def _non_negative(**amounts: int) -> None:
    for name, value in amounts.items():
        if type(value) is not int:
            raise UnbalancedTransaction(f"{name} must be an integer count of minor units, got {value!r}")
        if value < 0:
            raise UnbalancedTransaction(f"{name} must not be negative, got {value}")


def _nonzero(postings: Iterable[Posting | None]) -> tuple[Posting, ...]:
    return tuple(p for p in postings if p is not None)


def _vat_terms(rate: str | None, scheme: str | None) -> dict[str, str]:
    """``{"vat_rate", "vat_scheme"}`` for a sale's metadata (each only when given).  Raises :class:`ValueError`
    for a rate that is not a decimal percentage or an unknown scheme."""
    terms: dict[str, str] = {}
    if rate is not None:
        if not isinstance(rate, str) or not _RATE.match(rate):
            raise ValueError(f"vat_rate must be a decimal percentage like '25.5', got {rate!r}")
        terms["vat_rate"] = rate
    if scheme is not None:
        if scheme not in VAT_SCHEMES:
            raise ValueError(f"vat_scheme must be one of {', '.join(VAT_SCHEMES)}, got {scheme!r}")
        terms["vat_scheme"] = scheme
    return terms


def _line(make: Callable[[str, str, int], Posting], account: str, currency: str, amount: int) -> Posting | None:
    """``make(account, currency, amount)`` or None for a zero amount (a zero line is never booked)."""
    return make(account, currency, amount) if amount else None


# --- The standard transactions of the pipelines ------------------------------------------------------------------


def payment_captured(
    job_id: str,
    customer_id: str,
    currency: str,
    net: int,
    vat: int,
    vat_country: str,
    fee: int = 0,
    vat_rate: str | None = None,
    vat_scheme: str | None = None,
    fee_currency: str | None = None,
) -> LedgerTransaction:
    """The capture of a card payment of ``net + vat`` (effect ``payment:{job_id}:capture``).

    Debit ``stripe_clearing`` the total; credit ``revenue`` the net and ``vat_payable:{CC}`` the VAT (no VAT line
    when ``vat`` is 0: reverse charge, outside scope).  A Stripe ``fee`` > 0 debits ``fees`` and credits
    ``stripe_clearing``, which then holds what Stripe will pay out; ``fee_currency`` is the fee's currency when
    it is not the payment's (Stripe charges the fee in the balance's currency).  ``customer_id`` is kept in the
    metadata; the payment is collected at once, so no receivable stays open.  ``vat_rate`` (``"25.5"``) and
    ``vat_scheme`` (``oss``, ``domestic``, ``reverse_charge``, ``outside_scope``), when given, go into the metadata
    for the OSS return (docs/reports.md).  Raises :class:`UnbalancedTransaction` for a negative or non-integer
    amount or a zero total; :class:`ValueError` for a malformed ``vat_country``, ``vat_rate`` or ``vat_scheme``.
    """
    _non_negative(net=net, vat=vat, fee=fee)
    total = net + vat
    if total == 0:
        raise UnbalancedTransaction(f"payment {job_id}: nothing to book (net and VAT are 0)")
    vat_account = vat_payable(vat_country)
    postings = _nonzero(
        [
            debit(STRIPE_CLEARING, currency, total),
            _line(credit, REVENUE, currency, net),
            _line(credit, vat_account, currency, vat),
            _line(debit, FEES, fee_currency or currency, fee),
            _line(credit, STRIPE_CLEARING, fee_currency or currency, fee),
        ]
    )
    return LedgerTransaction(
        effect_key=f"payment:{job_id}:capture",
        kind="payment",
        postings=postings,
        job_id=job_id,
        description=f"payment {job_id} captured",
        metadata={
            "customer": customer_id,
            "net": net,
            "vat": vat,
            "vat_country": vat_account.split(":", 1)[1],
            "fee": fee,
            **_vat_terms(vat_rate, vat_scheme),
        },
    )


def refund_issued(
    job_id: str,
    customer_id: str,
    currency: str,
    net: int,
    vat: int,
    vat_country: str,
    payment_job_id: str | None = None,
    vat_rate: str | None = None,
    vat_scheme: str | None = None,
) -> LedgerTransaction:
    """A refund of ``net + vat`` to the customer (effect ``refund:{job_id}:issue``).

    Reverses a payment's split: debit ``refunds`` (contra-revenue) the net and ``vat_payable:{CC}`` the VAT, credit
    ``stripe_clearing`` the total.  The caller decides the split of a partial refund (proportional to the payment's
    net and VAT, rounded as the VAT module rounds) and passes both parts; ``vat_rate`` and ``vat_scheme`` are the
    payment's, kept in the metadata when given.  Raises :class:`UnbalancedTransaction` for a negative or
    non-integer amount or a zero total; :class:`ValueError` for a malformed ``vat_country``, ``vat_rate`` or
    ``vat_scheme``.
    """
    _non_negative(net=net, vat=vat)
    total = net + vat
    if total == 0:
        raise UnbalancedTransaction(f"refund {job_id}: nothing to book (net and VAT are 0)")
    vat_account = vat_payable(vat_country)
    postings = _nonzero(
        [
            _line(debit, REFUNDS, currency, net),
            _line(debit, vat_account, currency, vat),
            credit(STRIPE_CLEARING, currency, total),
        ]
    )
    return LedgerTransaction(
        effect_key=f"refund:{job_id}:issue",
        kind="refund",
        postings=postings,
        job_id=job_id,
        description=f"refund {job_id}" + (f" of payment {payment_job_id}" if payment_job_id else ""),
        metadata={
            "customer": customer_id,
            "payment": payment_job_id,
            "net": net,
            "vat": vat,
            "vat_country": vat_account.split(":", 1)[1],
            **_vat_terms(vat_rate, vat_scheme),
        },
    )


def settlement_fee(base: int, fee_bps: int) -> int:
    """The fee of ``fee_bps`` basis points on ``base`` minor units, rounded half up (0 bps: no fee).

    Raises :class:`UnbalancedTransaction` for a negative base, or ``fee_bps`` outside 0..10000.
    """
    _non_negative(base=base, fee_bps=fee_bps)
    if fee_bps > _MAX_BPS:
        raise UnbalancedTransaction(f"fee_bps must be at most {_MAX_BPS}, got {fee_bps}")
    # Integer half-up: never a float on money.
    return (base * fee_bps + _MAX_BPS // 2) // _MAX_BPS


def settlement_batch(
    job_id: str,
    terminal: str,
    currency: str,
    sales: int,
    refunds: int,
    voids: int,
    fee_bps: int,
) -> LedgerTransaction | None:
    """One POS batch's settlement for one terminal and currency (effect ``settlement:{job_id}:{terminal}:{cur}``).

    ``sales``, ``refunds`` and ``voids`` are the sums of the accepted rows of each type.  As ``docs/ledger.md`` says,
    the gross goes to ``pos_clearing:{terminal}`` against ``revenue`` with no VAT split: sales debit the clearing
    account and credit ``revenue``; voids (a sale cancelled before it settled) reverse ``revenue``; refunds debit
    ``refunds``. The fee is ``fee_bps`` of the settled sales (sales - voids, floored at 0), rounded half up, debited to
    ``fees`` against the clearing account.  Returns None when every amount is 0 (nothing to book).  Raises
    :class:`UnbalancedTransaction` for a negative or non-integer amount or ``fee_bps`` out of range.
    """
    _non_negative(sales=sales, refunds=refunds, voids=voids, fee_bps=fee_bps)
    clearing = pos_clearing(terminal)
    fee = settlement_fee(max(sales - voids, 0), fee_bps)
    postings = _nonzero(
        [
            _line(debit, clearing, currency, sales),
            _line(credit, REVENUE, currency, sales),
            _line(debit, REVENUE, currency, voids),
            _line(credit, clearing, currency, voids),
            _line(debit, REFUNDS, currency, refunds),
            _line(credit, clearing, currency, refunds),
            _line(debit, FEES, currency, fee),
            _line(credit, clearing, currency, fee),
        ]
    )
    if not postings:
        return None
    cur = currency.lower()
    return LedgerTransaction(
        effect_key=f"settlement:{job_id}:{terminal}:{cur}",
        kind="settlement",
        postings=postings,
        job_id=job_id,
        description=f"POS settlement of terminal {terminal} ({cur})",
        metadata={"terminal": terminal, "sales": sales, "refunds": refunds, "voids": voids, "fee": fee},
    )


def invoice_issued(
    effect_key: str,
    customer_id: str,
    currency: str,
    net: int,
    vat: int,
    vat_country: str,
    job_id: str | None = None,
    kind: str = "subscription",
    vat_rate: str | None = None,
    vat_scheme: str | None = None,
) -> LedgerTransaction:
    """A sale billed now and collected later (subscription renewals, dunning): debit ``receivable:{customer}`` the
    total, credit ``revenue`` the net and ``vat_payable:{CC}`` the VAT.  :func:`invoice_paid` closes it.
    ``vat_rate`` and ``vat_scheme`` go into the metadata as for :func:`payment_captured`.

    Raises as :func:`payment_captured` does.
    """
    _non_negative(net=net, vat=vat)
    if net + vat == 0:
        raise UnbalancedTransaction(f"{effect_key}: nothing to book (net and VAT are 0)")
    vat_account = vat_payable(vat_country)
    postings = _nonzero(
        [
            debit(receivable(customer_id), currency, net + vat),
            _line(credit, REVENUE, currency, net),
            _line(credit, vat_account, currency, vat),
        ]
    )
    return LedgerTransaction(
        effect_key=effect_key,
        kind=kind,
        postings=postings,
        job_id=job_id,
        description=f"invoice to {customer_id}",
        metadata={
            "customer": customer_id,
            "net": net,
            "vat": vat,
            "vat_country": vat_account.split(":", 1)[1],
            **_vat_terms(vat_rate, vat_scheme),
        },
    )


def stripe_fee(effect_key: str, currency: str, amount: int, job_id: str | None = None) -> LedgerTransaction:
    """Stripe's fee of ``amount`` on a charge booked on its own (effect ``effect_key``, kind ``fee``): debit
    ``fees``, credit ``stripe_clearing``.  Raises :class:`UnbalancedTransaction` for an amount that is not a
    positive int."""
    _non_negative(amount=amount)
    return LedgerTransaction(
        effect_key=effect_key,
        kind="fee",
        postings=(debit(FEES, currency, amount), credit(STRIPE_CLEARING, currency, amount)),
        job_id=job_id,
        description="Stripe fee",
        metadata={"fee": amount},
    )


def invoice_paid(
    effect_key: str,
    customer_id: str,
    currency: str,
    amount: int,
    job_id: str | None = None,
    kind: str = "subscription",
) -> LedgerTransaction:
    """Collection of ``amount`` an earlier :func:`invoice_issued` billed: debit ``stripe_clearing``, credit
    ``receivable:{customer}``.  Raises :class:`UnbalancedTransaction` for an amount that is not a positive int."""
    _non_negative(amount=amount)
    return LedgerTransaction(
        effect_key=effect_key,
        kind=kind,
        postings=(debit(STRIPE_CLEARING, currency, amount), credit(receivable(customer_id), currency, amount)),
        job_id=job_id,
        description=f"payment from {customer_id}",
        metadata={"customer": customer_id},
    )


def credit_note_issued(
    effect_key: str,
    customer_id: str,
    currency: str,
    net: int,
    vat: int,
    vat_country: str,
    job_id: str | None = None,
    invoice_job_id: str | None = None,
    vat_rate: str | None = None,
    vat_scheme: str | None = None,
) -> LedgerTransaction:
    """A credit note of ``net + vat`` kept as the customer's credit (a downgrade's unused time), not paid out:
    debit ``refunds`` (contra-revenue) the net and ``vat_payable:{CC}`` the VAT, credit
    ``customer_credit:{customer}`` (a liability) the total.  :func:`credit_applied` consumes it.  The OSS report
    reads it as a refund of the sale ``invoice_job_id`` booked (``metadata.payment``).

    Raises :class:`UnbalancedTransaction` for a negative or non-integer amount or a zero total; :class:`ValueError`
    for a malformed ``vat_country``, ``vat_rate`` or ``vat_scheme``.
    """
    _non_negative(net=net, vat=vat)
    if net + vat == 0:
        raise UnbalancedTransaction(f"{effect_key}: nothing to book (net and VAT are 0)")
    vat_account = vat_payable(vat_country)
    postings = _nonzero(
        [
            _line(debit, REFUNDS, currency, net),
            _line(debit, vat_account, currency, vat),
            credit(customer_credit(customer_id), currency, net + vat),
        ]
    )
    return LedgerTransaction(
        effect_key=effect_key,
        kind="subscription",
        postings=postings,
        job_id=job_id,
        description=f"credit note to {customer_id}",
        metadata={
            "customer": customer_id,
            "payment": invoice_job_id,
            "net": net,
            "vat": vat,
            "vat_country": vat_account.split(":", 1)[1],
            **_vat_terms(vat_rate, vat_scheme),
        },
    )


def credit_applied(
    effect_key: str, customer_id: str, currency: str, amount: int, job_id: str | None = None
) -> LedgerTransaction:
    """``amount`` of the customer's credit paying (part of) an invoice :func:`invoice_issued` billed: debit
    ``customer_credit:{customer}``, credit ``receivable:{customer}``.  Raises :class:`UnbalancedTransaction` for an
    amount that is not a positive int."""
    _non_negative(amount=amount)
    return LedgerTransaction(
        effect_key=effect_key,
        kind="subscription",
        postings=(
            debit(customer_credit(customer_id), currency, amount),
            credit(receivable(customer_id), currency, amount),
        ),
        job_id=job_id,
        description=f"credit of {customer_id} applied",
        metadata={"customer": customer_id, "credit_applied": amount},
    )
