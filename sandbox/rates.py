"""The local stack's ECB rates: a small file in the ECB's own format, generated for the days around today.

The local stack has no internet and ``PAYMENTS_RATES_URL`` is off by default, yet reports need rates.  At start
the stack generates ``eurofxref-hist-90d.xml`` (the ECB's format for its last 90 days) under the data directory,
one publication per TARGET business day of the last 100 days, and imports the days that have no rates yet
(real rates imported earlier are never touched).  **These are sandbox rates**: every day repeats the real ECB
publication of 1 July 2024 (:data:`SAMPLE_RATES`), so conversions are plausible and reproducible, not the market.
Point ``PAYMENTS_RATES_URL`` at ``file://…/var/ecb/eurofxref-hist-90d.xml`` to exercise the scheduler's fetch.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from engine.db.rates import ImportResult, import_rates
from engine.db.tables_rates import rates
from engine.domain.conversion import ecb_closed
from engine.domain.ecb_files import parse, render_daily_xml

#: The ECB's euro reference rates published on 2024-07-01 (units per euro).
SAMPLE_RATES = {
    "USD": "1.0745", "JPY": "173.15", "BGN": "1.9558", "CZK": "25.048", "DKK": "7.4586", "GBP": "0.8479",
    "HUF": "394.25", "PLN": "4.3008", "RON": "4.9766", "SEK": "11.3675", "CHF": "0.9689", "ISK": "148.9",
    "NOK": "11.4315", "TRY": "35.1126", "AUD": "1.6109", "BRL": "6.0016", "CAD": "1.4711", "CNY": "7.8097",
    "HKD": "8.3945", "IDR": "17569", "ILS": "4.0304", "INR": "89.6575", "KRW": "1485.41", "MXN": "19.7315",
    "MYR": "5.0641", "NZD": "1.7638", "PHP": "62.998", "SGD": "1.4567", "THB": "39.434", "ZAR": "19.5015",
}  # fmt: skip
SOURCE = "sandbox eurofxref-hist-90d.xml (the ECB's rates of 2024-07-01, repeated)"
DAYS = 100


def publication_days(today: date, days: int = DAYS) -> list[date]:
    """The TARGET business days of the ``days`` days up to ``today``, newest first."""
    span = (today - timedelta(days=n) for n in range(days))
    return [d for d in span if not ecb_closed(d)]


def fixture(today: date, skip: set[date] | None = None) -> bytes:
    """The sandbox file in the ECB's XML format: one publication of :data:`SAMPLE_RATES` per business day
    (leaving out ``skip``)."""
    return render_daily_xml({d: SAMPLE_RATES for d in publication_days(today) if d not in (skip or set())})


def install(engine: sa.Engine, today: date, data_dir: Path) -> ImportResult:
    """Write the fixture under ``data_dir/ecb/`` and store the days that have no rates yet (idempotent)."""
    days = publication_days(today)
    with engine.begin() as conn:
        stored = {d for (d,) in conn.execute(sa.select(rates.c.date).where(rates.c.date >= min(days)).distinct())}
        data = fixture(today, skip=stored)
        folder = data_dir / "ecb"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "eurofxref-hist-90d.xml").write_bytes(fixture(today))
        return import_rates(conn, parse(data, "eurofxref-hist-90d.xml"), SOURCE)
