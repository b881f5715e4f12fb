"""The settlement report of a day: what each acquirer owes for the business booked that day, from the ledger.

One row per clearing account and currency: ``stripe`` (card payments: ``stripe_clearing``) and each POS terminal
(``pos_clearing:{terminal}``).  ``sales`` is what the day's sales debited to the clearing account, ``refunds``,
``voids``, ``fees`` and ``disputes`` what was credited back for each reason, and ``net`` the day's movement of the
account (``sales − refunds − voids − fees − disputes``), computed from the transactions' postings; the database's
own sum of the account is shown beside it (``ledger``) and must agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.domain.ledger import FEES, REVENUE, STRIPE_CLEARING
from engine.reports.ledger_reader import BookedTransaction, account_totals, read_transactions
from engine.reports.periods import Period

PARTS = ("sales", "refunds", "voids", "fees", "disputes")
ROW_COLUMNS = ("clearing", "currency", *PARTS, "net", "ledger", "agrees")


def _clearing_name(account: str) -> str | None:
    if account == STRIPE_CLEARING:
        return "stripe"
    if account.startswith("pos_clearing:"):
        return "pos:" + account.split(":", 1)[1]
    return None


def parts_of(txn: BookedTransaction) -> dict[tuple[str, str], dict[str, int]]:
    """What ``txn`` moved on each clearing account, by (clearing, currency), split into :data:`PARTS`.

    A debit of a clearing account is a sale (in a ``dispute:`` transaction: a won dispute's reinstatement, which
    takes from ``disputes``).  A credit is a dispute in a ``dispute:`` transaction (its fee a fee); otherwise it is
    named by the posting it balances: a ``revenue`` debit of the same amount (a void), a ``fees`` debit (a fee),
    anything else a refund (a refund credits its total, net and VAT together).
    """
    out: dict[tuple[str, str], dict[str, int]] = {}
    dispute = txn.effect_key.startswith("dispute:")
    # Debits a clearing credit can balance; each is used once, so a void and a fee of equal amounts stay apart.
    balancing = [
        (q.account, q.currency, q.amount) for q in txn.postings if q.account in (REVENUE, FEES) and q.amount > 0
    ]
    for p in txn.postings:
        name = _clearing_name(p.account)
        if name is None:
            continue
        parts = out.setdefault((name, p.currency), dict.fromkeys(PARTS, 0))
        if p.amount > 0:
            if dispute:
                parts["disputes"] -= p.amount  # a won dispute's reinstatement gives back what its opening took
            else:
                parts["sales"] += p.amount
            continue
        reason = "disputes" if dispute else "refunds"
        for candidate in balancing:
            if (not dispute or candidate[0] == FEES) and candidate[1:] == (p.currency, -p.amount):
                reason = "voids" if candidate[0] == REVENUE else "fees"
                balancing.remove(candidate)
                break
        parts[reason] -= p.amount
    return out


@dataclass
class SettlementReport:
    """Rows per (clearing account, currency) for one day."""

    period: Period
    rows: list[dict[str, Any]]
    transactions: int

    @property
    def agrees(self) -> bool:
        return all(r["agrees"] for r in self.rows)

    def lines(self) -> Iterator[dict[str, Any]]:
        yield from self.rows

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "settlement",
            "date": self.period.label,
            "transactions": self.transactions,
            "agrees_with_ledger": self.agrees,
            "clearing": self.rows,
        }


def compute_settlement(conn: sa.Connection, period: Period) -> SettlementReport:
    """The settlement report of ``period`` (a day) read on ``conn``, inside one repeatable-read transaction."""
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(PARTS, 0))
    count = 0
    for txn in read_transactions(conn, period.start, period.end):
        moved = parts_of(txn)
        count += bool(moved)
        for key, parts in moved.items():
            for name, value in parts.items():
                totals[key][name] += value
    ledger: dict[tuple[str, str], int] = {}
    for m in account_totals(conn, period.start, period.end):
        clearing_name = _clearing_name(m.account)
        if clearing_name is not None:
            ledger[(clearing_name, m.currency)] = m.total
    rows = []
    for clearing, cur in sorted(set(totals) | set(ledger)):
        parts = totals[(clearing, cur)]
        net = parts["sales"] - sum(parts[p] for p in PARTS if p != "sales")
        booked = ledger.get((clearing, cur), 0)
        rows.append(
            {"clearing": clearing, "currency": cur, **parts, "net": net, "ledger": booked, "agrees": net == booked}
        )
    return SettlementReport(period=period, rows=rows, transactions=count)
