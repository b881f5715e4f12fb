"""Settlement: an index of refunds and voids by their original sale, for the sum check across batches.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

``post`` compares the sum of every refund and void of a sale — settled by this batch or any earlier one — with the
sale (docs/settlement.md, "Checks that need the database").  The earlier batches' refunds and voids of a sale are
found through this partial index, so the check costs one index probe per sale the batch refers to, not a scan of
every settled transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "pos_transactions_original_idx",
        "pos_transactions",
        ["terminal_id", "original_transaction_id"],
        postgresql_where=sa.text("type <> 'sale'"),
    )


def downgrade() -> None:
    op.drop_index("pos_transactions_original_idx", table_name="pos_transactions")
