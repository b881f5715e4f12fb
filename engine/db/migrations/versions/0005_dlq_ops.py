"""Dead-letter operations: the archive written by ``payments dlq purge`` before it deletes anything.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dlq_archive",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("dlq", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=True),
        sa.Column("kind", sa.Text, nullable=True),
        sa.Column("group_id", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("attributes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("reason", JSONB, nullable=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("dlq", "message_id", name="dlq_archive_dlq_message_key"),
        sa.CheckConstraint("action IN ('purge', 'settled')", name="dlq_archive_action_known"),
    )
    op.create_index("dlq_archive_job_idx", "dlq_archive", ["job_id"])


def downgrade() -> None:
    op.drop_index("dlq_archive_job_idx", table_name="dlq_archive")
    op.drop_table("dlq_archive")
