"""POS batch settlement: ``pos_transactions`` (settled rows, unique per terminal and transaction) and
``settlement_outcomes`` (every rejected or duplicate row of a batch, for its report).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Self-contained on top of the ledger (0002): it touches no table of another migration.  See
``engine/db/tables_settlement.py`` for what each row means and ``docs/settlement.md`` for the flow.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pos_transactions",
        sa.Column("terminal_id", sa.Text, primary_key=True),
        sa.Column("transaction_id", sa.Text, primary_key=True),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("row_no", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("card_last4", sa.Text, nullable=False),
        sa.Column("auth_code", sa.Text, nullable=True),
        sa.Column("original_transaction_id", sa.Text, nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("type IN ('sale', 'refund', 'void')", name="pos_transactions_type_known"),
        sa.CheckConstraint("amount > 0", name="pos_transactions_amount_positive"),
        sa.CheckConstraint("currency ~ '^[a-z]{3}$'", name="pos_transactions_currency_lower"),
        sa.CheckConstraint("card_last4 ~ '^[0-9]{4}$'", name="pos_transactions_card_last4_digits"),
        sa.CheckConstraint(
            "(type = 'sale') = (original_transaction_id IS NULL)", name="pos_transactions_original_for_reversals"
        ),
    )
    op.create_index(
        "pos_transactions_job_reversals_idx",
        "pos_transactions",
        ["job_id"],
        postgresql_where=sa.text("type <> 'sale'"),
    )
    op.create_table(
        "settlement_outcomes",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("row_no", sa.BigInteger, primary_key=True),
        sa.Column("terminal_id", sa.Text, nullable=True),
        sa.Column("transaction_id", sa.Text, nullable=True),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.CheckConstraint("outcome IN ('rejected', 'duplicate')", name="settlement_outcomes_outcome_known"),
    )
    op.create_index(
        "settlement_outcomes_rejected_idx",
        "settlement_outcomes",
        ["job_id", "row_no"],
        postgresql_where=sa.text("outcome = 'rejected'"),
    )


def downgrade() -> None:
    op.drop_index("settlement_outcomes_rejected_idx", table_name="settlement_outcomes")
    op.drop_table("settlement_outcomes")
    op.drop_index("pos_transactions_job_reversals_idx", table_name="pos_transactions")
    op.drop_table("pos_transactions")
