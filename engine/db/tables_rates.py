"""The table of ECB euro reference rates (migration ``0007``), mirrored for queries.

``rates`` holds one row per publication day and currency: ``rate`` units of ``currency`` (ISO 4217, lower case)
for one euro, as the decimal string the ECB published (``"11.3675"``; never a float), and where it was read from
(``source``: a file name or URL).  The euro has no row (its rate is 1).  A day the ECB did not publish has no
rows; :mod:`engine.domain.conversion` decides what that means.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.db.metadata import metadata

rates = sa.Table(
    "rates",
    metadata,
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    sa.Column("rate", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("currency ~ '^[a-z]{3}$'", name="rates_currency_lower"),
    sa.CheckConstraint("currency <> 'eur'", name="rates_not_euro"),
    sa.CheckConstraint("rate ~ '^[0-9]+(\\.[0-9]+)?$' AND rate::numeric > 0", name="rates_rate_decimal"),
)
sa.Index("rates_currency_date_idx", rates.c.currency, rates.c.date)
