"""ECB euro reference rates: ``rates`` (one row per publication day and currency).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

See ``engine/db/tables_rates.py`` for what each row means.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rates",
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("currency", sa.Text, primary_key=True),
        sa.Column("rate", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("currency ~ '^[a-z]{3}$'", name="rates_currency_lower"),
        sa.CheckConstraint("currency <> 'eur'", name="rates_not_euro"),
        sa.CheckConstraint("rate ~ '^[0-9]+(\\.[0-9]+)?$' AND rate::numeric > 0", name="rates_rate_decimal"),
    )
    op.create_index("rates_currency_date_idx", "rates", ["currency", "date"])


def downgrade() -> None:
    op.drop_table("rates")
