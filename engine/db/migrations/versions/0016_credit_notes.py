"""Credit notes: ``credit_notes`` and their gap-free counters ``credit_note_counters``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

A refund of an invoiced charge (a subscription's, or a payment's that asked for an invoice) issues a credit note
referencing the invoice; see ``engine/db/tables_credit_notes.py`` for what each row means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_note_counters",
        sa.Column("seller", sa.Text, primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
        sa.CheckConstraint("last_number >= 1", name="credit_note_counters_positive"),
    )
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("seller", sa.Text, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False, unique=True),
        sa.Column(
            "invoice_id", sa.BigInteger, sa.ForeignKey("invoices.id", name="credit_notes_invoice_fkey"), nullable=False
        ),
        sa.Column("invoice_number", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=True),
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
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("seller", "year", "sequence", name="credit_notes_seller_year_sequence_key"),
        sa.UniqueConstraint("seller", "number", name="credit_notes_seller_number_key"),
        sa.CheckConstraint("net >= 0 AND vat >= 0 AND total = net + vat AND total > 0", name="credit_notes_amounts"),
    )
    op.create_index("credit_notes_invoice_idx", "credit_notes", ["invoice_id"])
    op.create_index("credit_notes_unstored_idx", "credit_notes", ["id"], postgresql_where=sa.text("stored_at IS NULL"))


def downgrade() -> None:
    op.drop_index("credit_notes_unstored_idx", table_name="credit_notes")
    op.drop_index("credit_notes_invoice_idx", table_name="credit_notes")
    op.drop_table("credit_notes")
    op.drop_table("credit_note_counters")
