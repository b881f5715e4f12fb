"""Ledger: double-entry transactions and entries, balanced per currency by the database itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Money is always balanced (``docs/design.md``, "The promises"): whatever writes the ledger (the pipeline, a script,
``psql``), a transaction whose entries do not sum to zero per currency, or that has fewer than two entries, cannot
commit. The check is a deferred constraint trigger (the django-hordak habit): it runs at COMMIT, once every entry of the
transaction is in, so the entries may be inserted one by one or in one statement.  The ledger is append-only: entries
and transactions refuse UPDATE, DELETE and TRUNCATE; a correction is a new transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KINDS = "('payment', 'refund', 'subscription', 'settlement', 'fee', 'adjustment')"

# One function checks one ledger transaction; both deferred triggers call it.  It raises check_violation
# (SQLSTATE 23514, an IntegrityError to drivers) naming the transaction, so a refused COMMIT says why.
CHECK_FUNCTION = """
CREATE FUNCTION ledger_assert_balanced(txn text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    per_currency record;
    n_entries bigint := 0;
BEGIN
    FOR per_currency IN
        SELECT currency, sum(amount) AS total, count(*) AS n
        FROM ledger_entries WHERE transaction_id = txn GROUP BY currency
    LOOP
        n_entries := n_entries + per_currency.n;
        IF per_currency.total <> 0 THEN
            RAISE EXCEPTION 'ledger transaction % is unbalanced in %: its entries sum to %, not 0',
                txn, per_currency.currency, per_currency.total
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced',
                      TABLE = 'ledger_entries';
        END IF;
    END LOOP;
    -- A transaction that no longer exists with no entries left is not a ledger transaction at all.
    IF n_entries = 0 AND NOT EXISTS (SELECT 1 FROM ledger_transactions WHERE id = txn) THEN
        RETURN;
    END IF;
    IF n_entries < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % entries; a transaction needs at least 2', txn, n_entries
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_entries_balanced',
                  TABLE = 'ledger_entries';
    END IF;
END
$$;
"""

ENTRY_TRIGGER_FUNCTION = """
CREATE FUNCTION ledger_entries_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM ledger_assert_balanced(OLD.transaction_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.transaction_id <> OLD.transaction_id) THEN
        PERFORM ledger_assert_balanced(NEW.transaction_id);
    END IF;
    RETURN NULL;
END
$$;
"""

TRANSACTION_TRIGGER_FUNCTION = """
CREATE FUNCTION ledger_transactions_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Catches a transaction row committed with no entries, which no entry trigger would ever see.
    PERFORM ledger_assert_balanced(NEW.id);
    RETURN NULL;
END
$$;
"""

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused; book a correcting transaction instead', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME;
END
$$;
"""

TRIGGERS = [
    # Deferred: fires at COMMIT (or SET CONSTRAINTS ... IMMEDIATE), when every entry is in.
    """
    CREATE CONSTRAINT TRIGGER ledger_entries_balanced
    AFTER INSERT OR UPDATE OR DELETE ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_check_balanced()
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_transactions_balanced
    AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_transactions_check_balanced()
    """,
    # Immediate: an UPDATE or DELETE fails at once, whatever the deferred check would say.
    """
    CREATE TRIGGER ledger_entries_append_only
    BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER ledger_entries_no_truncate
    BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER ledger_transactions_append_only
    BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER ledger_transactions_no_truncate
    BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()
    """,
]


def upgrade() -> None:
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=True),
        sa.Column("effect_key", sa.Text, nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"kind IN {KINDS}", name="ledger_transactions_kind_known"),
        sa.CheckConstraint("effect_key <> ''", name="ledger_transactions_effect_key_not_empty"),
    )
    op.create_index("ledger_transactions_job_idx", "ledger_transactions", ["job_id"])

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "transaction_id",
            sa.Text,
            sa.ForeignKey("ledger_transactions.id", name="ledger_entries_transaction_fkey"),
            nullable=False,
        ),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount <> 0", name="ledger_entries_amount_not_zero"),
        sa.CheckConstraint("currency ~ '^[a-z]{3}$'", name="ledger_entries_currency_lower"),
        sa.CheckConstraint("account <> ''", name="ledger_entries_account_not_empty"),
    )
    op.create_index("ledger_entries_transaction_idx", "ledger_entries", ["transaction_id"])
    op.create_index("ledger_entries_account_currency_idx", "ledger_entries", ["account", "currency"])

    for ddl in (CHECK_FUNCTION, ENTRY_TRIGGER_FUNCTION, TRANSACTION_TRIGGER_FUNCTION, APPEND_ONLY_FUNCTION, *TRIGGERS):
        op.execute(ddl)


def downgrade() -> None:
    # Dropping the tables drops their triggers; the functions go after.
    op.drop_table("ledger_entries")
    op.drop_table("ledger_transactions")
    op.execute("DROP FUNCTION ledger_refuse_change()")
    op.execute("DROP FUNCTION ledger_transactions_check_balanced()")
    op.execute("DROP FUNCTION ledger_entries_check_balanced()")
    op.execute("DROP FUNCTION ledger_assert_balanced(text)")
