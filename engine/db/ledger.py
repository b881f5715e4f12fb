"""The ledger repository: book :class:`~engine.domain.ledger.LedgerTransaction` values, verify, sum balances.

Writes happen on the caller's connection and inside the caller's transaction, never committing: a pipeline stage
commits its ledger rows, its checkpoint and its outbox row together (``docs/design.md``, "Recovery
points").  The database checks the balance at that COMMIT (migration 0002's deferred trigger), so an
unbalanced write surfaces as :class:`sqlalchemy.exc.IntegrityError` from ``commit()``.

Use READ COMMITTED (PostgreSQL's default) for writers: a concurrent booking of the same effect then waits for
the first to commit and finds its row.  Under REPEATABLE READ the same race ends in a serialization failure,
which is retryable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.tables import ledger_entries, ledger_transactions
from engine.domain.ledger import LedgerTransaction, Posting
from engine.errors import PaymentsError

# Rows per multi-row INSERT: well under PostgreSQL's 65535 bind parameters (6 per transaction, 4 per entry).
_CHUNK = 1000

# The database-side guards of migrations 0002 and 0013; verify reports any that is missing or disabled.
GUARD_TRIGGERS = (
    ("ledger_entries", "ledger_entries_balanced"),
    ("ledger_transactions", "ledger_transactions_balanced"),
    ("ledger_entries", "ledger_entries_append_only"),
    ("ledger_entries", "ledger_entries_no_truncate"),
    ("ledger_transactions", "ledger_transactions_append_only"),
    ("ledger_transactions", "ledger_transactions_no_truncate"),
    ("ledger_entries", "ledger_entries_same_transaction"),
)


class EffectConflict(PaymentsError):
    """An effect already booked with other postings or another kind: the caller computed the same effect
    differently twice (a bug, or changed rules replayed over old data).  Nothing was written."""


class Balance(TypedDict):
    """One account's balance in one currency: the sum of its entries, debits positive."""

    account: str
    currency: str
    balance: int


ProblemKind = Literal["unbalanced", "too_few_entries", "orphan_entries"]


@dataclass(frozen=True)
class Offender:
    """A ledger transaction that breaks a rule.

    ``unbalanced``: its entries in ``currency`` sum to ``total``, not 0.  ``too_few_entries``: it has ``entries``
    (< 2) entries.  ``orphan_entries``: ``entries`` entries point at ``transaction_id``, which does not exist.
    """

    problem: ProblemKind
    transaction_id: str
    effect_key: str | None
    message: str
    currency: str | None = None
    total: int | None = None
    entries: int | None = None


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`: counts, every offending transaction, and the guards not in force."""

    transactions: int
    entries: int
    offenders: list[Offender] = field(default_factory=list)
    # "table.trigger: missing|disabled" for every database guard of migration 0002 that is not active.
    guards_inactive: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every transaction balances and every guard is active."""
        return not self.offenders and not self.guards_inactive

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``payments ledger verify --json``)."""
        return {
            "ok": self.ok,
            "transactions": self.transactions,
            "entries": self.entries,
            "offenders": [asdict(o) for o in self.offenders],
            "guards_inactive": list(self.guards_inactive),
        }


def new_transaction_id() -> str:
    """A fresh ledger transaction id (``ltx_`` + 32 hex digits)."""
    return f"ltx_{uuid.uuid4().hex}"


def record(conn: sa.Connection, txn: LedgerTransaction) -> str:
    """Book ``txn`` on ``conn`` inside the caller's transaction and return its ledger transaction id.

    Idempotent on ``txn.effect_key``: when the effect is already booked (earlier, or by a concurrent writer that
    commits first) nothing is written and the existing id is returned.  Does not commit.  Raises
    :class:`EffectConflict` when the booked effect has other postings or kind, and
    :class:`sqlalchemy.exc.SQLAlchemyError` on database errors (the caller's transaction is then unusable).
    """
    return record_many(conn, [txn])[0]


def record_many(conn: sa.Connection, txns: Sequence[LedgerTransaction]) -> list[str]:
    """Book several transactions with multi-row INSERTs; return their ids in the order given.

    Same promises as :func:`record` for each transaction (an effect listed twice with the same postings is booked
    once).  Raises :class:`EffectConflict` when an effect is listed twice differently or was booked differently;
    rows this call already wrote stay in the caller's transaction, which should then roll back.
    """
    unique: dict[str, LedgerTransaction] = {}
    for txn in txns:
        seen = unique.setdefault(txn.effect_key, txn)
        if seen is not txn and not _same_effect(seen, txn.kind, txn.postings):
            raise EffectConflict(f"effect {txn.effect_key} is listed twice with different postings")
    if not unique:
        return []

    ids: dict[str, str] = {}
    # Effect-key order: two writers of overlapping batches take the unique-index locks in the same order, so
    # they queue behind each other instead of deadlocking.
    batch = sorted(unique.values(), key=lambda t: t.effect_key)
    for start in range(0, len(batch), _CHUNK):
        chunk = batch[start : start + _CHUNK]
        proposed = {t.effect_key: new_transaction_id() for t in chunk}
        stmt = (
            insert(ledger_transactions)
            .values(
                [
                    {
                        "id": proposed[t.effect_key],
                        "kind": t.kind,
                        "job_id": t.job_id,
                        "effect_key": t.effect_key,
                        "description": t.description,
                        "metadata": dict(t.metadata),
                    }
                    for t in chunk
                ]
            )
            # A concurrent writer of the same effect blocks here until the first commits, then skips its row.
            .on_conflict_do_nothing(index_elements=[ledger_transactions.c.effect_key])
            .returning(ledger_transactions.c.effect_key, ledger_transactions.c.id)
        )
        inserted: dict[str, str] = {key: tid for key, tid in conn.execute(stmt).all()}
        ids.update(inserted)
        _insert_entries(
            conn, [(inserted[t.effect_key], p) for t in chunk if t.effect_key in inserted for p in t.postings]
        )
        existing = [t for t in chunk if t.effect_key not in inserted]
        if existing:
            ids.update(_check_existing(conn, existing))
    return [ids[t.effect_key] for t in txns]


def _insert_entries(conn: sa.Connection, rows: list[tuple[str, Posting]]) -> None:
    for start in range(0, len(rows), _CHUNK):
        part = rows[start : start + _CHUNK]
        conn.execute(
            ledger_entries.insert().values(
                [
                    {"transaction_id": tid, "account": p.account, "currency": p.currency, "amount": p.amount}
                    for tid, p in part
                ]
            )
        )


def _check_existing(conn: sa.Connection, txns: list[LedgerTransaction]) -> dict[str, str]:
    """Ids of effects already booked; raise :class:`EffectConflict` when one was booked with other postings."""
    rows = conn.execute(
        sa.select(ledger_transactions.c.effect_key, ledger_transactions.c.id, ledger_transactions.c.kind).where(
            ledger_transactions.c.effect_key.in_([t.effect_key for t in txns])
        )
    ).all()
    found = {key: (tid, kind) for key, tid, kind in rows}
    booked = postings_of(conn, [tid for tid, _ in found.values()])
    ids: dict[str, str] = {}
    for txn in txns:
        if txn.effect_key not in found:
            # ON CONFLICT skipped the row, yet it is not visible: only a snapshot older than the conflicting
            # commit can do that, which PostgreSQL reports itself under REPEATABLE READ; defend anyway.
            raise RuntimeError(f"effect {txn.effect_key} conflicted but its transaction is not visible")
        tid, kind = found[txn.effect_key]
        if not _same_effect(txn, kind, booked.get(tid, [])):
            raise EffectConflict(
                f"effect {txn.effect_key} is already booked as {tid} with other postings; "
                "book a correcting transaction under a new effect key instead"
            )
        ids[txn.effect_key] = tid
    return ids


def _same_effect(txn: LedgerTransaction, kind: str, postings: Iterable[Posting]) -> bool:
    return txn.kind == kind and txn.same_postings(postings)


def postings_of(conn: sa.Connection, transaction_ids: Sequence[str]) -> dict[str, list[Posting]]:
    """The postings of each of ``transaction_ids`` (missing ids are absent from the result)."""
    if not transaction_ids:
        return {}
    e = ledger_entries.c
    rows = conn.execute(
        sa.select(e.transaction_id, e.account, e.currency, e.amount)
        .where(e.transaction_id.in_(list(transaction_ids)))
        .order_by(e.id)
    ).all()
    out: dict[str, list[Posting]] = {}
    for tid, account, currency, amount in rows:
        out.setdefault(tid, []).append(Posting(account, currency, amount))
    return out


def find(conn: sa.Connection, effect_key: str) -> str | None:
    """The id of the transaction booking ``effect_key``, or None when it is not booked (as ``conn`` sees it)."""
    return conn.execute(
        sa.select(ledger_transactions.c.id).where(ledger_transactions.c.effect_key == effect_key)
    ).scalar_one_or_none()


def verify(engine: sa.Engine) -> VerifyReport:
    """Check the whole ledger in one consistent snapshot.

    Reports every transaction unbalanced in some currency, every transaction with fewer than two entries, every
    entry whose transaction does not exist (only possible with the database's guards bypassed), and every guard
    trigger of migration 0002 that is missing or disabled.  Reads only.  Raises
    :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be read.
    """
    t, e = ledger_transactions, ledger_entries
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        n_txns = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        n_entries = conn.execute(sa.select(sa.func.count()).select_from(e)).scalar_one()
        offenders: list[Offender] = []

        total = sa.func.sum(e.c.amount)
        unbalanced = conn.execute(
            sa.select(e.c.transaction_id, t.c.effect_key, e.c.currency, total, sa.func.count())
            .join(t, t.c.id == e.c.transaction_id)
            .group_by(e.c.transaction_id, t.c.effect_key, e.c.currency)
            .having(total != 0)
            .order_by(e.c.transaction_id, e.c.currency)
        ).all()
        for tid, key, currency, amount, n in unbalanced:
            offenders.append(
                Offender(
                    "unbalanced",
                    tid,
                    key,
                    f"entries in {currency} sum to {int(amount)}, not 0",
                    currency=currency,
                    total=int(amount),
                    entries=n,
                )
            )

        count = sa.func.count(e.c.id)
        too_few = conn.execute(
            sa.select(t.c.id, t.c.effect_key, count)
            .outerjoin(e, e.c.transaction_id == t.c.id)
            .group_by(t.c.id, t.c.effect_key)
            .having(count < 2)
            .order_by(t.c.id)
        ).all()
        for tid, key, n in too_few:
            offenders.append(Offender("too_few_entries", tid, key, f"{n} entries; at least 2 are needed", entries=n))

        orphans = conn.execute(
            sa.select(e.c.transaction_id, sa.func.count())
            .outerjoin(t, t.c.id == e.c.transaction_id)
            .where(t.c.id.is_(None))
            .group_by(e.c.transaction_id)
            .order_by(e.c.transaction_id)
        ).all()
        for tid, n in orphans:
            offenders.append(
                Offender(
                    "orphan_entries", tid, None, f"{n} entries point at a transaction that does not exist", entries=n
                )
            )

        guards = _inactive_guards(conn)
    return VerifyReport(transactions=n_txns, entries=n_entries, offenders=offenders, guards_inactive=guards)


def _inactive_guards(conn: sa.Connection) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, tg.tgname, tg.tgenabled FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid "
            "WHERE c.relname IN ('ledger_entries', 'ledger_transactions') AND c.relnamespace = "
            "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        )
    ).all()
    # tgenabled: 'O' origin/local, 'A' always fire; 'D' disabled; 'R' replica-only (off in normal sessions).
    state = {(table, name): enabled for table, name, enabled in rows}
    inactive = []
    for table, name in GUARD_TRIGGERS:
        enabled = state.get((table, name))
        if enabled is None:
            inactive.append(f"{table}.{name}: missing")
        elif enabled not in ("O", "A"):
            inactive.append(f"{table}.{name}: disabled")
    return inactive


def balances(engine: sa.Engine, account_prefix: str | None = None) -> list[Balance]:
    """Each account's balance per currency (debits positive), sorted by account then currency.

    ``account_prefix`` keeps the accounts starting with it, taken literally (``_`` and ``%`` are not wildcards):
    ``receivable:`` lists every customer's receivable.  Accounts whose entries sum to 0 are listed with 0.
    Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be read.
    """
    e = ledger_entries.c
    total = sa.func.sum(e.amount)
    stmt = sa.select(e.account, e.currency, total).group_by(e.account, e.currency).order_by(e.account, e.currency)
    if account_prefix:
        stmt = stmt.where(e.account.startswith(account_prefix, autoescape=True))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    # sum(bigint) is numeric in PostgreSQL (a Decimal here); balances are whole minor units.
    return [Balance(account=a, currency=c.strip(), balance=int(b)) for a, c, b in rows]


def account_balance(conn: sa.Connection, account: str, currency: str) -> int:
    """The balance of ``account`` in ``currency`` (debits positive, 0 without entries), read on the caller's
    connection.  Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be read."""
    e = ledger_entries.c
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(e.amount), 0)).where(
            e.account == account, e.currency == currency.lower()
        )
    ).scalar_one()
    return int(total)
