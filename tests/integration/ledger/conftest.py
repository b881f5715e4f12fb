"""Fixtures for the ledger's integration tests.

Tests share one database per xdist worker, so each names its own effect keys and accounts (a uuid tag) rather
than truncating, and a test that corrupts the ledger on purpose removes the corruption before it ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from engine.db.engine import get_engine
from engine.domain.ledger import LedgerTransaction, Posting


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    return get_engine(database_url)


@pytest.fixture
def tag() -> str:
    """A name fragment private to one test."""
    return f"t{uuid.uuid4().hex[:12]}"


def simple_txn(tag: str, key: str = "e1", amount: int = 100, currency: str = "eur") -> LedgerTransaction:
    """A balanced two-line transaction on the test's own accounts."""
    return LedgerTransaction(
        effect_key=f"{tag}:{key}",
        kind="adjustment",
        postings=(Posting(f"{tag}:cash", currency, amount), Posting(f"{tag}:income", currency, -amount)),
        job_id=f"job_{tag}",
        description="test",
        metadata={"tag": tag},
    )


def insert_header(conn: sa.Connection, txn_id: str, effect_key: str) -> None:
    conn.execute(
        sa.text("INSERT INTO ledger_transactions (id, kind, effect_key) VALUES (:id, 'adjustment', :key)"),
        {"id": txn_id, "key": effect_key},
    )


def insert_entry(conn: sa.Connection, txn_id: str, account: str, currency: str, amount: int) -> None:
    conn.execute(
        sa.text("INSERT INTO ledger_entries (transaction_id, account, currency, amount) VALUES (:t, :a, :c, :n)"),
        {"t": txn_id, "a": account, "c": currency, "n": amount},
    )


@contextmanager
def guards_off(conn: sa.Connection) -> Iterator[None]:
    """Inside the caller's transaction, switch off every trigger of the ledger tables (foreign keys included).

    ALTER TABLE is transactional: the triggers are back on before COMMIT, so no other session ever sees them
    off, and no deferred check was queued for the rows written meanwhile.  Needs the tables' owner (superuser
    for the foreign-key triggers), which the test database's user is.
    """
    conn.execute(sa.text("ALTER TABLE ledger_entries DISABLE TRIGGER ALL"))
    conn.execute(sa.text("ALTER TABLE ledger_transactions DISABLE TRIGGER ALL"))
    try:
        yield
    finally:
        conn.execute(sa.text("ALTER TABLE ledger_entries ENABLE TRIGGER ALL"))
        conn.execute(sa.text("ALTER TABLE ledger_transactions ENABLE TRIGGER ALL"))


@contextmanager
def corruption(engine: sa.Engine, tag: str) -> Iterator[dict[str, str]]:
    """Commit three broken transactions past the database's guards; remove them afterwards.

    Yields their ids: ``unbalanced`` (EUR +100/-99), ``lonely`` (one entry) and ``orphan`` (entries pointing at
    no transaction).
    """
    ids = {"unbalanced": f"ltx_{tag}_unbal", "lonely": f"ltx_{tag}_lonely", "orphan": f"ltx_{tag}_orphan"}
    with engine.begin() as conn, guards_off(conn):
        insert_header(conn, ids["unbalanced"], f"{tag}:unbalanced")
        insert_entry(conn, ids["unbalanced"], f"{tag}:cash", "eur", 100)
        insert_entry(conn, ids["unbalanced"], f"{tag}:income", "eur", -99)
        insert_header(conn, ids["lonely"], f"{tag}:lonely")
        insert_entry(conn, ids["lonely"], f"{tag}:cash", "eur", 5)
        insert_entry(conn, ids["orphan"], f"{tag}:cash", "usd", 7)
        insert_entry(conn, ids["orphan"], f"{tag}:income", "usd", -7)
    try:
        yield ids
    finally:
        # The ledger is append-only, so even the cleanup has to go past the guards.
        with engine.begin() as conn, guards_off(conn):
            conn.execute(
                sa.text("DELETE FROM ledger_entries WHERE transaction_id = ANY(:ids)"), {"ids": list(ids.values())}
            )
            conn.execute(sa.text("DELETE FROM ledger_transactions WHERE id = ANY(:ids)"), {"ids": list(ids.values())})
