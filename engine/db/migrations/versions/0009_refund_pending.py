"""Refunds that Stripe has not settled: ``pending`` and ``reversed`` join the statuses of ``refunds``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A card refund can stay ``pending`` at Stripe and fail later (``refund.failed``).  The engine books it when Stripe
takes it (Stripe debits the balance at once) but keeps the row ``pending`` until Stripe says ``succeeded``; a
refund that fails after it was booked is reversed in the ledger and its row becomes ``reversed`` (it no longer
counts against what remains refundable).  See ``engine/db/tables_refunds.py``.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BEFORE = "('held', 'released', 'reserved', 'succeeded', 'failed')"
AFTER = "('held', 'released', 'reserved', 'pending', 'succeeded', 'failed', 'reversed')"


def upgrade() -> None:
    op.drop_constraint("refunds_status_known", "refunds", type_="check")
    op.create_check_constraint("refunds_status_known", "refunds", f"status IN {AFTER}")


def downgrade() -> None:
    # Before 0009 a pending refund was recorded as succeeded, and a reversed one as failed.
    op.execute("UPDATE refunds SET status = 'succeeded' WHERE status = 'pending'")
    op.execute("UPDATE refunds SET status = 'failed' WHERE status = 'reversed'")
    op.drop_constraint("refunds_status_known", "refunds", type_="check")
    op.create_check_constraint("refunds_status_known", "refunds", f"status IN {BEFORE}")
