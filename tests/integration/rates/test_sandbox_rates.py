"""The local stack's sandbox rates: an ECB-format file for the last 100 days, imported where nothing is stored."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from engine.db.engine import get_engine
from engine.db.rates import import_rates, listing, load_window, period_end_window
from engine.domain.ecb_files import PublishedRate, parse
from sandbox.rates import SAMPLE_RATES, install, publication_days

pytestmark = pytest.mark.integration


def test_install_fills_only_days_without_rates_and_writes_the_file(database_url: str, tmp_path: Path) -> None:
    engine = get_engine(database_url)
    today = date(2400, 1, 1) + timedelta(days=random.randrange(0, 200_000))
    days = publication_days(today)
    assert 60 <= len(days) <= 75
    real_day = days[10]
    with engine.begin() as conn:
        import_rates(conn, [PublishedRate(real_day, "sek", "10.9")], "eurofxref-daily.xml")

    first = install(engine, today, tmp_path)
    assert first.inserted == (len(days) - 1) * len(SAMPLE_RATES)
    assert install(engine, today, tmp_path).inserted == 0
    with engine.connect() as conn:
        # The day that had a real rate keeps it and gets no sandbox rates.
        assert [r["rate"] for r in listing(conn, None, real_day, real_day)] == ["10.9"]
        assert listing(conn, "sek", days[0], days[0])[0]["rate"] == "11.3675"
        table = load_window(conn, *period_end_window(days[1]))
    assert table.period_end_rate("huf", days[1]).value == Decimal("394.25")
    written = parse((tmp_path / "ecb" / "eurofxref-hist-90d.xml").read_bytes())
    assert {r.day for r in written} == set(days)
