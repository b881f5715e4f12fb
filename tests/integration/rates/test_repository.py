"""The ``rates`` table on real PostgreSQL: idempotent imports, conflicts, and the loads conversions need."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.db.engine import get_engine
from engine.db.rates import RatesConflict, import_rates, listing, load_latest, load_window, period_end_window
from engine.db.tables_rates import rates
from engine.domain.conversion import RateMissing, ecb_closed
from engine.domain.ecb_files import PublishedRate, parse

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "data" / "ecb"


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    return get_engine(database_url)


@pytest.fixture
def far_day() -> date:
    """A Wednesday no other test uses (rates are shared by the worker's tests), in a week whose only closing days
    are the weekend."""
    while True:
        day = date(2100, 1, 6) + timedelta(weeks=random.randrange(0, 50_000))
        week = [day + timedelta(days=n) for n in range(8)]
        if [d for d in week if ecb_closed(d)] == week[3:5]:
            return day


def test_importing_the_real_files_twice_stores_each_rate_once(engine: sa.Engine) -> None:
    hist = parse((DATA / "eurofxref-hist-2024.csv").read_bytes())
    daily = parse((DATA / "eurofxref-daily-2024-06-28.xml").read_bytes())
    with engine.begin() as conn:
        first = import_rates(conn, hist, "eurofxref-hist.csv")
    assert first.inserted + first.unchanged == 240
    with engine.begin() as conn:
        again = import_rates(conn, hist, "eurofxref-hist.csv")
        xml = import_rates(conn, daily, "eurofxref-daily.xml")
    assert (again.inserted, again.unchanged, again.replaced) == (0, 240, 0)
    # The XML spells HUF 395.10 where the CSV has 395.1: the same rate, not a conflict.
    assert (xml.inserted, xml.unchanged) == (0, 30)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(rates.c.rate).where(rates.c.date == date(2024, 7, 1), rates.c.currency == "sek")
        ).all()
    assert rows == [("11.3675",)]


def test_a_different_rate_for_a_stored_day_is_a_conflict_and_writes_nothing(engine: sa.Engine, far_day: date) -> None:
    with engine.begin() as conn:
        import_rates(conn, [PublishedRate(far_day, "sek", "11.5")], "a.xml")
    other_day = far_day + timedelta(days=1)
    clash = [PublishedRate(other_day, "sek", "11.6"), PublishedRate(far_day, "sek", "11.51")]
    with pytest.raises(RatesConflict, match=r"SEK .*stored 11.5, file 11.51") as caught, engine.begin() as conn:
        import_rates(conn, clash, "b.xml")
    assert caught.value.conflicts == [(far_day, "sek", "11.5", "11.51")]
    with engine.connect() as conn:
        assert listing(conn, "sek", far_day, other_day) == [
            {"date": far_day.isoformat(), "currency": "sek", "rate": "11.5", "source": "a.xml"}
        ]
    with engine.begin() as conn:
        replaced = import_rates(conn, clash, "b.xml", replace=True)
    assert (replaced.inserted, replaced.replaced) == (1, 1)
    with engine.connect() as conn:
        assert [r["rate"] for r in listing(conn, "sek", far_day, other_day)] == ["11.6", "11.51"]


def test_the_database_refuses_malformed_rows(engine: sa.Engine, far_day: date) -> None:
    for row in (
        {"date": far_day, "currency": "SEK", "rate": "1.5", "source": "x"},
        {"date": far_day, "currency": "eur", "rate": "1", "source": "x"},
        {"date": far_day, "currency": "sek", "rate": "1e5", "source": "x"},
        {"date": far_day, "currency": "sek", "rate": "0.0", "source": "x"},
    ):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(rates.insert().values(**row))


def test_load_window_and_the_oss_rule_against_stored_rates(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        import_rates(conn, parse((DATA / "eurofxref-hist-2024.csv").read_bytes()), "eurofxref-hist.csv")
        table = load_window(conn, *period_end_window(date(2024, 6, 30)))
        latest = load_latest(conn, ["SEK", "huf", "eur"], date(2024, 8, 31))
    assert table.period_end_rate("sek", date(2024, 6, 30)).value == Decimal("11.3675")
    assert latest.latest_rate("huf", date(2024, 8, 31)).day == date(2024, 7, 2)
    assert latest.latest_rate("eur", date(2024, 8, 31)).value == 1


def test_a_quarter_end_without_its_publication_is_missing(engine: sa.Engine, far_day: date) -> None:
    # Only the Monday after is stored: the Friday before it, a business day, is not imported.
    friday = far_day + timedelta(days=2)
    with engine.begin() as conn:
        import_rates(conn, [PublishedRate(friday + timedelta(days=3), "pln", "4.3")], "x.xml")
        table = load_window(conn, *period_end_window(friday))
    with pytest.raises(RateMissing, match=f"PLN on {friday.isoformat()}"):
        table.period_end_rate("pln", friday)
    assert table.period_end_rate("pln", friday + timedelta(days=1)).value == Decimal("4.3")
