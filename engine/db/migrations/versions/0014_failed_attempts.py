"""Failed attempts counted by the engine: ``jobs.failed_attempts``.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

A job is dead-lettered after three attempts that failed for a reason of its own (engine/jobs/attempts.py), not
after three SQS receives: a worker killed while holding messages, a message returned behind a failing one of its
group, or a Stripe outage spend receives, never attempts.  SQS's redrive stays as a safety net at a higher
maxReceiveCount.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("jobs", "failed_attempts")
