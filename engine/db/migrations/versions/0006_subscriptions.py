"""Subscriptions: ``subscriptions``, ``subscription_renewals`` (one per period and attempt), gap-free invoices.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

See ``engine/db/tables_subscriptions.py`` for what each row means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATUSES = "('incomplete', 'trialing', 'active', 'past_due', 'canceled')"


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("customer", JSONB, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payment_method", sa.Text, nullable=False),
        sa.Column("billing_cycle_anchor", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_index", sa.Integer, nullable=False, server_default="0"),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trial_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("credit_balance", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("dunning_attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_job_id", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(f"status IN {STATUSES}", name="subscriptions_status_known"),
    )
    op.create_index("subscriptions_customer_idx", "subscriptions", ["customer_id"])
    op.create_index("subscriptions_due_idx", "subscriptions", ["status", "current_period_end"])
    op.create_table(
        "subscription_renewals",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "subscription_id",
            sa.Text,
            sa.ForeignKey("subscriptions.id", name="subscription_renewals_subscription_fkey"),
            nullable=False,
        ),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("job_id", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("subscription_id", "period_start", "attempt", name="subscription_renewals_period_key"),
        sa.CheckConstraint("attempt >= 1", name="subscription_renewals_attempt_positive"),
    )
    op.create_table(
        "invoice_counters",
        sa.Column("seller", sa.Text, primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
        sa.CheckConstraint("last_number >= 1", name="invoice_counters_positive"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("seller", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=False, unique=True),
        sa.Column("subscription_id", sa.Text, nullable=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("net", sa.BigInteger, nullable=False),
        sa.Column("vat", sa.BigInteger, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("vat_country", sa.Text, nullable=False),
        sa.Column("vat_rate", sa.Text, nullable=False),
        sa.Column("vat_scheme", sa.Text, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.Column("s3_key", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("seller", "year", "sequence", name="invoices_seller_year_sequence_key"),
        sa.UniqueConstraint("seller", "number", name="invoices_seller_number_key"),
    )
    op.create_index("invoices_subscription_idx", "invoices", ["subscription_id"])


def downgrade() -> None:
    op.drop_index("invoices_subscription_idx", table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("invoice_counters")
    op.drop_table("subscription_renewals")
    op.drop_index("subscriptions_due_idx", table_name="subscriptions")
    op.drop_index("subscriptions_customer_idx", table_name="subscriptions")
    op.drop_table("subscriptions")
