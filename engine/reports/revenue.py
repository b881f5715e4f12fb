"""The revenue report: gross, VAT, refunds, fees, disputes and net per currency and day, from the ledger.

Each posting of each transaction booked in the period counts once (docs/reports.md):

* ``revenue`` credits (a sale's net, a POS sale) add to **gross**; ``revenue`` debits (POS voids) subtract;
* ``vat_payable:{CC}`` credits add to **gross** and **vat**; its debits (a refund's VAT) add to **refunds** and
  **refund_vat**;
* ``refunds`` debits add to **refunds**;
* ``fees`` debits add to **fees** (credits subtract);
* the receivable a dispute debits (effect ``dispute:…``) adds to **disputes**, and its credit when the dispute
  closes subtracts; a lost dispute's ``dispute_losses`` debit (its net part) adds — so a won dispute counts 0 and a
  lost one its net, its VAT part showing as a refund's VAT.

``net = gross − vat − (refunds − refund_vat) − fees − disputes``: what the period earned, without the VAT owed.
Beside the rows, the same period's account movements computed by the database (``SUM`` per account) and the
checks that they agree: ``Σ(gross − vat) = revenue``, ``Σ(vat − refund_vat) = vat_payable``,
``Σ(refunds − refund_vat) = refunds``, ``Σ fees = fees``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.domain.ledger import DISPUTE_LOSSES, FEES, REFUNDS, REVENUE
from engine.reports.ledger_reader import BookedTransaction, account_totals, read_transactions, totals_by_class
from engine.reports.periods import Period

FIGURES = ("gross", "vat", "refunds", "refund_vat", "fees", "disputes")
#: Columns of the report's CSV: one row per day and currency.
ROW_COLUMNS = ("date", "currency", *FIGURES, "net", "transactions")


@dataclass
class DayFigures:
    """One currency's figures on one day, in minor units."""

    gross: int = 0
    vat: int = 0
    refunds: int = 0
    refund_vat: int = 0
    fees: int = 0
    disputes: int = 0
    transactions: int = 0

    @property
    def net(self) -> int:
        """Gross less VAT, refunds (without their VAT), fees and disputes."""
        return self.gross - self.vat - (self.refunds - self.refund_vat) - self.fees - self.disputes

    def add(self, other: DayFigures) -> None:
        for name in (*FIGURES, "transactions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_json(self) -> dict[str, int]:
        return {**{name: getattr(self, name) for name in FIGURES}, "net": self.net, "transactions": self.transactions}


def figures_of(txn: BookedTransaction, currency: str) -> DayFigures:
    """What one transaction contributes in ``currency`` (see the module's docstring)."""
    f = DayFigures(transactions=1)
    dispute = txn.effect_key.startswith("dispute:")
    for p in txn.postings:
        if p.currency != currency:
            continue
        if p.account == REVENUE:
            f.gross -= p.amount
        elif p.account.startswith("vat_payable:"):
            if p.amount < 0:
                f.gross -= p.amount
                f.vat -= p.amount
            else:
                f.refunds += p.amount
                f.refund_vat += p.amount
        elif p.account == REFUNDS:
            f.refunds += p.amount
        elif p.account == FEES:
            f.fees += p.amount
        elif dispute and p.account.startswith("receivable:"):
            # Opened: the hold adds; closed (won: reinstated, lost: written off) takes it out again.
            f.disputes += p.amount
        elif dispute and p.account == DISPUTE_LOSSES:
            f.disputes += p.amount
    return f


@dataclass
class RevenueReport:
    """Rows per (day, currency), totals per currency, and the ledger's account movements beside them."""

    period: Period
    currency: str | None
    rows: list[tuple[date, str, DayFigures]]
    totals: dict[str, DayFigures]
    ledger: dict[str, dict[str, int]]
    transactions: int
    checks: dict[str, dict[str, bool]] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        """True when every check of every currency holds."""
        return all(ok for cur in self.checks.values() for ok in cur.values())

    def lines(self) -> Iterator[dict[str, Any]]:
        """The CSV rows (:data:`ROW_COLUMNS`), by day then currency."""
        for day, cur, figures in self.rows:
            yield {"date": day.isoformat(), "currency": cur, **figures.to_json()}

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        return {
            "type": "revenue",
            "period": self.period.label,
            "first_day": self.period.first.isoformat(),
            "last_day": self.period.last.isoformat(),
            "currency": self.currency,
            "transactions": self.transactions,
            "totals": {cur: f.to_json() for cur, f in sorted(self.totals.items())},
            "ledger": self.ledger,
            "checks": self.checks,
            "agrees_with_ledger": self.agrees,
            "days": list(self.lines()),
        }


def compute_revenue(conn: sa.Connection, period: Period, currency: str | None = None) -> RevenueReport:
    """The revenue report of ``period`` read on ``conn`` (inside one repeatable-read transaction), all currencies
    or only ``currency``.  Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be read."""
    only = currency.strip().lower() if currency else None
    days: dict[tuple[date, str], DayFigures] = defaultdict(DayFigures)
    count = 0
    for txn in read_transactions(conn, period.start, period.end):
        touched = [c for c in txn.currencies if only is None or c == only]
        count += bool(touched)
        for cur in touched:
            days[(txn.booked_at.date(), cur)].add(figures_of(txn, cur))
    totals: dict[str, DayFigures] = defaultdict(DayFigures)
    for (_, cur), figures in days.items():
        totals[cur].add(figures)
    movements = account_totals(conn, period.start, period.end)
    currencies = sorted({cur for _, cur in days} | {m.currency for m in movements if only in (None, m.currency)})
    ledger: dict[str, dict[str, int]] = {}
    checks: dict[str, dict[str, bool]] = {}
    for cur in currencies:
        by_class = totals_by_class(movements, cur)
        t = totals[cur]
        ledger[cur] = {
            "revenue": -by_class["revenue"],
            "vat_payable": -by_class["vat_payable"],
            "refunds": by_class["refunds"],
            "fees": by_class["fees"],
            "stripe_clearing": by_class["stripe_clearing"],
            "pos_clearing": by_class["pos_clearing"],
        }
        checks[cur] = {
            "revenue": t.gross - t.vat == ledger[cur]["revenue"],
            "vat_payable": t.vat - t.refund_vat == ledger[cur]["vat_payable"],
            "refunds": t.refunds - t.refund_vat == ledger[cur]["refunds"],
            "fees": t.fees == ledger[cur]["fees"],
        }
    rows = sorted(((day, cur, f) for (day, cur), f in days.items()), key=lambda r: (r[0], r[1]))
    return RevenueReport(
        period=period,
        currency=only,
        rows=rows,
        totals={cur: totals[cur] for cur in currencies},
        ledger=ledger,
        transactions=count,
        checks=checks,
    )
