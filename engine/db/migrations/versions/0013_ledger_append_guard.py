"""Ledger: entries can be added to a ledger transaction only in the database transaction that created it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

Migration 0002 keeps every committed ledger transaction balanced and its rows unchangeable, but balanced entries
could still be appended to a transaction committed long ago (``+100`` and ``-100`` more on a sale), changing what
it says while every check passes.  A BEFORE INSERT trigger on ``ledger_entries`` now refuses an entry whose
ledger transaction row was not inserted by the current database transaction (its ``xmin``, never changed since
``ledger_transactions`` refuses UPDATE, is the current top-level transaction id).  A correction is a new ledger
transaction, as before.  Entries must be written in the same (top-level) transaction as their header, outside a
SAVEPOINT: a header written inside a savepoint carries the subtransaction's id and its entries are refused, which
fails closed.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION ledger_entries_refuse_late_append() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- A header that does not exist is the foreign key's to refuse, with its own message.
    IF EXISTS (
        SELECT 1 FROM ledger_transactions
        WHERE id = NEW.transaction_id AND xmin <> pg_current_xact_id()::xid
    ) THEN
        RAISE EXCEPTION 'ledger transaction % is already committed: entries cannot be appended to it; book a new '
            'transaction instead', NEW.transaction_id
            USING ERRCODE = 'restrict_violation', TABLE = 'ledger_entries';
    END IF;
    RETURN NEW;
END
$$;
"""

TRIGGER = """
CREATE TRIGGER ledger_entries_same_transaction
BEFORE INSERT ON ledger_entries
FOR EACH ROW EXECUTE FUNCTION ledger_entries_refuse_late_append()
"""


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS ledger_entries_same_transaction ON ledger_entries")
    op.execute("DROP FUNCTION IF EXISTS ledger_entries_refuse_late_append()")
