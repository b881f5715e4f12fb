"""Refunds and incoming Stripe webhooks: ``refunds`` (holds, reservations, bookings) and ``stripe_events`` (dedup).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Self-contained on top of the ledger (0002): it touches no table of another migration.  See
``engine/db/tables_refunds.py`` for what each row means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STATUSES = "('held', 'released', 'reserved', 'succeeded', 'failed')"
SOURCES = "('engine', 'stripe')"


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("payment_job_id", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=True),
        sa.Column("net", sa.BigInteger, nullable=True),
        sa.Column("vat", sa.BigInteger, nullable=True),
        sa.Column("currency", sa.Text, nullable=True),
        sa.Column("stripe_refund_id", sa.Text, nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"status IN {STATUSES}", name="refunds_status_known"),
        sa.CheckConstraint(f"source IN {SOURCES}", name="refunds_source_known"),
        sa.CheckConstraint(
            "amount IS NULL OR (amount > 0 AND net >= 0 AND vat >= 0 AND net + vat = amount)",
            name="refunds_amount_split",
        ),
        sa.CheckConstraint("status IN ('held', 'released') OR amount IS NOT NULL", name="refunds_amount_decided"),
    )
    op.create_index("refunds_payment_idx", "refunds", ["payment_job_id"])
    op.create_index("refunds_held_idx", "refunds", ["payment_job_id"], postgresql_where=sa.text("status = 'held'"))
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("object_id", sa.Text, nullable=True),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_index("refunds_held_idx", table_name="refunds")
    op.drop_index("refunds_payment_idx", table_name="refunds")
    op.drop_table("refunds")
