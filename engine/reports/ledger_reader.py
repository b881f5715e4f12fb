"""Read the ledger for reports: its transactions of a period with their postings, streamed, and account totals.

Reports read the ledger's postings, never the job rows: what was booked is what is reported.  A transaction
belongs to the period its ``created_at`` (the booking time, UTC) falls in.  Every function reads on the caller's
connection — a report opens its own (:mod:`engine.reports.database`), on the read replica when there is one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.db.tables import ledger_entries, ledger_transactions
from engine.domain.ledger import Posting

# Rows fetched per round trip from the server-side cursor.
STREAM_ROWS = 2000


@dataclass(frozen=True, slots=True)
class BookedTransaction:
    """A ledger transaction as booked: its id, kind, effect key, job, booking time, metadata and postings."""

    id: str
    kind: str
    effect_key: str
    job_id: str | None
    booked_at: datetime
    metadata: dict[str, Any]
    postings: tuple[Posting, ...]

    def total(self, account_prefix: str, currency: str | None = None) -> int:
        """Sum of the postings on accounts starting with ``account_prefix`` (debits positive), optionally one
        currency."""
        return sum(
            p.amount
            for p in self.postings
            if p.account.startswith(account_prefix) and (currency is None or p.currency == currency)
        )

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies its postings move, sorted."""
        return tuple(sorted({p.currency for p in self.postings}))


def _select(where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    t, e = ledger_transactions.c, ledger_entries.c
    return (
        sa.select(t.id, t.kind, t.effect_key, t.job_id, t.created_at, t.metadata, e.account, e.currency, e.amount)
        .join(ledger_entries, e.transaction_id == t.id)
        .where(where)
        .order_by(t.created_at, t.id, e.id)
    )


def _grouped(rows: Iterable[Any]) -> Iterator[BookedTransaction]:
    current: list[Any] = []
    for row in rows:
        if current and row.id != current[0].id:
            yield _booked(current)
            current = []
        current.append(row)
    if current:
        yield _booked(current)


def _booked(rows: list[Any]) -> BookedTransaction:
    head = rows[0]
    return BookedTransaction(
        id=head.id,
        kind=head.kind,
        effect_key=head.effect_key,
        job_id=head.job_id,
        booked_at=head.created_at,
        metadata=dict(head.metadata or {}),
        postings=tuple(Posting(r.account, r.currency.strip(), int(r.amount)) for r in rows),
    )


def read_transactions(conn: sa.Connection, start: datetime, end: datetime) -> Iterator[BookedTransaction]:
    """Every transaction booked in ``[start, end)``, oldest first, with its postings; streamed from a
    server-side cursor (constant memory however long the period).  Call it inside a transaction."""
    t = ledger_transactions.c
    stmt = _select(sa.and_(t.created_at >= start, t.created_at < end)).execution_options(yield_per=STREAM_ROWS)
    yield from _grouped(conn.execute(stmt))


def sales_of_jobs(conn: sa.Connection, job_ids: Sequence[str]) -> dict[str, BookedTransaction]:
    """The sale each of ``job_ids`` booked (``payment:{job}:capture`` or ``subscription:{job}:invoice``), by
    job id; jobs without one are absent.  What a refund reverses is looked up here."""
    found: dict[str, BookedTransaction] = {}
    ids = sorted(set(job_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        keys = [f"payment:{j}:capture" for j in chunk] + [f"subscription:{j}:invoice" for j in chunk]
        for txn in _grouped(conn.execute(_select(ledger_transactions.c.effect_key.in_(keys)))):
            if txn.job_id is not None:
                found[txn.job_id] = txn
    return found


@dataclass(frozen=True, slots=True)
class AccountTotal:
    """The movement of one account in one currency over a period: the sum of its entries (debits positive)."""

    account: str
    currency: str
    total: int


def account_totals(conn: sa.Connection, start: datetime, end: datetime) -> list[AccountTotal]:
    """Each account's movement per currency over the transactions booked in ``[start, end)``, computed by the
    database (the independent side of a report's cross-check)."""
    t, e = ledger_transactions.c, ledger_entries.c
    rows = conn.execute(
        sa.select(e.account, e.currency, sa.func.sum(e.amount))
        .join(ledger_transactions, e.transaction_id == t.id)
        .where(t.created_at >= start, t.created_at < end)
        .group_by(e.account, e.currency)
        .order_by(e.account, e.currency)
    ).all()
    return [AccountTotal(a, c.strip(), int(n)) for a, c, n in rows]


def totals_by_class(totals: Iterable[AccountTotal], currency: str) -> dict[str, int]:
    """``{"revenue", "vat_payable", "refunds", "fees", "stripe_clearing", "pos_clearing", "receivable"}``: the
    movements of ``currency`` summed per account class (``vat_payable:IE`` and ``vat_payable:SE`` are one
    class)."""
    out = dict.fromkeys(
        ("revenue", "vat_payable", "refunds", "fees", "stripe_clearing", "pos_clearing", "receivable"), 0
    )
    for row in totals:
        if row.currency != currency:
            continue
        name = row.account.split(":", 1)[0]
        out[name] = out.get(name, 0) + row.total
    return out
