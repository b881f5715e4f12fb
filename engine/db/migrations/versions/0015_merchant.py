"""Merchants (tenants): ``jobs.merchant_id``, ``jobs.created_by`` and ``subscriptions.merchant_id``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

Every API query filters by the caller's merchant (the token's ``merchant`` claim), so rows made before it existed
belong to the default merchant (``default``, the one a local-stack token without the claim acts for).
``created_by`` is the token subject whose request made the job: the only one shown the PaymentIntent's
``client_secret``.  For existing payment jobs holding a secret it is read back from their idempotency scope
(``api:<len>:<sub>:<key>``, engine/ingest/accept.py), so a client keeps seeing the secret of its own payments.
The list index leads with the merchant: ``GET /v1/jobs`` pages one merchant's jobs newest first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant server default: PostgreSQL adds the column without rewriting the table.
    op.add_column("jobs", sa.Column("merchant_id", sa.Text, nullable=False, server_default="default"))
    op.add_column("jobs", sa.Column("created_by", sa.Text, nullable=True))
    op.add_column("subscriptions", sa.Column("merchant_id", sa.Text, nullable=False, server_default="default"))
    op.create_index(
        "jobs_merchant_created_idx", "jobs", ["merchant_id", sa.text("created_at DESC"), sa.text("id DESC")]
    )
    op.execute(
        """
        UPDATE jobs
           SET created_by = substr(idempotency_scope,
                                   length(split_part(idempotency_scope, ':', 2)) + 6,
                                   split_part(idempotency_scope, ':', 2)::int)
         WHERE idempotency_scope ~ '^api:[0-9]+:'
           AND result -> 'stripe' ? 'client_secret'
        """
    )


def downgrade() -> None:
    op.drop_index("jobs_merchant_created_idx", table_name="jobs")
    op.drop_column("subscriptions", "merchant_id")
    op.drop_column("jobs", "created_by")
    op.drop_column("jobs", "merchant_id")
