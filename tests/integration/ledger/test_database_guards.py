"""The database itself keeps the ledger balanced, whatever writes to it: raw SQL here, bypassing Python."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.db.ledger import record
from tests.integration.ledger.conftest import insert_entry, insert_header, simple_txn

pytestmark = pytest.mark.integration


def count_entries(engine: sa.Engine, txn_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM ledger_entries WHERE transaction_id = :t"), {"t": txn_id}
        ).scalar_one()


def test_balanced_transaction_inserted_entry_by_entry_commits(engine: sa.Engine, tag: str) -> None:
    txn_id = f"ltx_{tag}"
    with engine.begin() as conn:
        insert_header(conn, txn_id, f"{tag}:ok")
        # After this first entry the transaction is unbalanced; the check is deferred, so the insert succeeds.
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 100)
        insert_entry(conn, txn_id, f"{tag}:income", "eur", -70)
        insert_entry(conn, txn_id, f"{tag}:vat", "eur", -30)
    assert count_entries(engine, txn_id) == 3


def test_unbalanced_transaction_is_refused_at_commit_not_at_insert(engine: sa.Engine, tag: str) -> None:
    txn_id = f"ltx_{tag}"
    conn = engine.connect()
    try:
        conn.begin()
        insert_header(conn, txn_id, f"{tag}:bad")
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 100)
        insert_entry(conn, txn_id, f"{tag}:income", "eur", -99)  # every statement succeeds...
        with pytest.raises(sa.exc.IntegrityError, match=f"{txn_id} is unbalanced in eur"):
            conn.commit()  # ...and COMMIT is refused
    finally:
        conn.close()
    assert count_entries(engine, txn_id) == 0


def test_set_constraints_immediate_runs_the_check_early(engine: sa.Engine, tag: str) -> None:
    txn_id = f"ltx_{tag}"
    with engine.connect() as conn:
        conn.begin()
        insert_header(conn, txn_id, f"{tag}:early")
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 100)
        with pytest.raises(sa.exc.IntegrityError, match="unbalanced"):
            conn.execute(sa.text("SET CONSTRAINTS ledger_entries_balanced IMMEDIATE"))
        conn.rollback()


def test_balance_is_checked_per_currency(engine: sa.Engine, tag: str) -> None:
    txn_id = f"ltx_{tag}"
    with pytest.raises(sa.exc.IntegrityError, match="unbalanced in usd"), engine.begin() as conn:
        insert_header(conn, txn_id, f"{tag}:fx")
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 100)
        insert_entry(conn, txn_id, f"{tag}:income", "eur", -100)  # EUR balanced
        insert_entry(conn, txn_id, f"{tag}:cash", "usd", 50)
        insert_entry(conn, txn_id, f"{tag}:income", "usd", -40)  # USD not
    assert count_entries(engine, txn_id) == 0


def test_amounts_of_different_currencies_do_not_offset(engine: sa.Engine, tag: str) -> None:
    txn_id = f"ltx_{tag}"
    with pytest.raises(sa.exc.IntegrityError, match="unbalanced"), engine.begin() as conn:
        insert_header(conn, txn_id, f"{tag}:cross")
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 100)
        insert_entry(conn, txn_id, f"{tag}:income", "usd", -100)


def test_balanced_in_two_currencies_commits(engine: sa.Engine, tag: str) -> None:
    txn_id = f"ltx_{tag}"
    with engine.begin() as conn:
        insert_header(conn, txn_id, f"{tag}:two")
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 100)
        insert_entry(conn, txn_id, f"{tag}:cash", "jpy", 1500)
        insert_entry(conn, txn_id, f"{tag}:income", "eur", -100)
        insert_entry(conn, txn_id, f"{tag}:income", "jpy", -1500)
    assert count_entries(engine, txn_id) == 4


def test_transaction_without_entries_is_refused(engine: sa.Engine, tag: str) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="0 entries"), engine.begin() as conn:
        insert_header(conn, f"ltx_{tag}", f"{tag}:empty")


def test_adding_an_unbalanced_entry_to_a_booked_transaction_is_refused(engine: sa.Engine, tag: str) -> None:
    with engine.begin() as conn:
        txn_id = record(conn, simple_txn(tag))
    # Refused at the INSERT already (migration 0013); the deferred balance check would refuse it at COMMIT.
    with pytest.raises(sa.exc.IntegrityError, match="already committed"), engine.begin() as conn:
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 1)
    assert count_entries(engine, txn_id) == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = amount * 2 WHERE transaction_id = :t",
        "UPDATE ledger_entries SET account = 'elsewhere' WHERE transaction_id = :t",
        "DELETE FROM ledger_entries WHERE transaction_id = :t",
        "UPDATE ledger_transactions SET description = 'edited' WHERE id = :t",
        "DELETE FROM ledger_transactions WHERE id = :t",
    ],
)
def test_ledger_rows_cannot_be_changed_or_deleted(engine: sa.Engine, tag: str, statement: str) -> None:
    with engine.begin() as conn:
        txn_id = record(conn, simple_txn(tag))
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(statement), {"t": txn_id})
    assert count_entries(engine, txn_id) == 2


@pytest.mark.parametrize("table", ["ledger_entries", "ledger_transactions"])
def test_ledger_tables_cannot_be_truncated(engine: sa.Engine, table: str) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {table} CASCADE"))


@pytest.mark.parametrize(
    ("currency", "amount"), [("eur", 0), ("EUR", 5), ("eu1", 5)], ids=["zero", "upper-case", "not-letters"]
)
def test_entry_shape_is_checked(engine: sa.Engine, tag: str, currency: str, amount: int) -> None:
    txn_id = f"ltx_{tag}"
    with pytest.raises(sa.exc.IntegrityError, match="ledger_entries_"), engine.begin() as conn:
        insert_header(conn, txn_id, f"{tag}:shape")
        insert_entry(conn, txn_id, f"{tag}:cash", currency, amount)
        insert_entry(conn, txn_id, f"{tag}:income", currency, -amount)


def test_effect_key_is_unique_in_the_database(engine: sa.Engine, tag: str) -> None:
    with engine.begin() as conn:
        record(conn, simple_txn(tag))
    with pytest.raises(sa.exc.IntegrityError, match="effect_key"), engine.begin() as conn:
        insert_header(conn, f"ltx_{tag}_2", f"{tag}:e1")


def test_balanced_entries_cannot_be_appended_to_a_committed_transaction(engine: sa.Engine, tag: str) -> None:
    txn_id = f"ltx_{tag}"
    with engine.begin() as conn:
        insert_header(conn, txn_id, f"{tag}:sale")
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 1230)
        insert_entry(conn, txn_id, f"{tag}:income", "eur", -1230)
    # Later, a balanced pair on the same transaction: it would pass every balance check, and is refused at once.
    with pytest.raises(sa.exc.IntegrityError, match=f"{txn_id} is already committed"), engine.begin() as conn:
        insert_entry(conn, txn_id, f"{tag}:cash", "eur", 100)
        insert_entry(conn, txn_id, f"{tag}:income", "eur", -100)
    assert count_entries(engine, txn_id) == 2
