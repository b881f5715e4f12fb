"""The rates repository: store ECB reference rates once, and load the ones a conversion needs.

Imports are idempotent: a rate already stored with the same value (``395.1`` and ``395.10`` are the same) is left
alone, so the daily task and ``payments rates import`` can run any number of times.  A stored rate that a file
gives *differently* is a conflict: the ECB does not revise published rates, so one of the two files is wrong, and
nothing of the import is written unless the caller asks to replace (``--replace``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.tables_rates import rates
from engine.domain.conversion import EURO, RateTable, parse_rate
from engine.domain.ecb_files import PublishedRate
from engine.errors import InvalidInput

# Rows per multi-row INSERT (4 bind parameters each).
_CHUNK = 5000
# Days loaded after a period's last day: enough for the longest run without a publication (four days).
WINDOW_DAYS = 10


class RatesConflict(InvalidInput):
    """The file gives rates that differ from rates already stored for the same day and currency.  Nothing was
    written.  ``conflicts`` lists ``(day, currency, stored, given)``."""

    def __init__(self, conflicts: list[tuple[date, str, str, str]]) -> None:
        first = ", ".join(f"{c.upper()} {d.isoformat()}: stored {s}, file {g}" for d, c, s, g in conflicts[:5])
        more = f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
        super().__init__(
            f"{len(conflicts)} rate(s) differ from the stored ones ({first}{more}); "
            "the ECB does not revise published rates, so check the file (or import with --replace)"
        )
        self.conflicts = conflicts


@dataclass
class ImportResult:
    """What an import did: rows ``inserted``, already stored alike (``unchanged``), ``replaced``; the days and
    currencies the file covered."""

    inserted: int = 0
    unchanged: int = 0
    replaced: int = 0
    first_day: date | None = None
    last_day: date | None = None
    currencies: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """JSON-able form (``payments rates import --json``)."""
        return {
            "inserted": self.inserted,
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "first_day": self.first_day.isoformat() if self.first_day else None,
            "last_day": self.last_day.isoformat() if self.last_day else None,
            "currencies": self.currencies,
        }


def import_rates(
    conn: sa.Connection, published: Sequence[PublishedRate], source: str, *, replace: bool = False
) -> ImportResult:
    """Store ``published`` on ``conn`` inside the caller's transaction (never commits).

    Raises :class:`RatesConflict` when a stored rate differs and ``replace`` is false (the caller's transaction
    then holds inserted rows and must roll back), and :class:`sqlalchemy.exc.SQLAlchemyError` on database errors.
    The euro's own rate, if a file lists it, is skipped (it is 1 by definition).
    """
    wanted = {(r.day, r.currency): r.rate for r in published if r.currency != EURO}
    result = ImportResult()
    if not wanted:
        return result
    days = [d for d, _ in wanted]
    result.first_day, result.last_day = min(days), max(days)
    result.currencies = sorted({c for _, c in wanted})
    inserted: set[tuple[date, str]] = set()
    items = sorted(wanted.items())
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        stmt = (
            insert(rates)
            .values([{"date": d, "currency": c, "rate": v, "source": source} for (d, c), v in chunk])
            .on_conflict_do_nothing(index_elements=[rates.c.date, rates.c.currency])
            .returning(rates.c.date, rates.c.currency)
        )
        inserted.update((d, c) for d, c in conn.execute(stmt).all())
    result.inserted = len(inserted)
    existing = [key for key in wanted if key not in inserted]
    if not existing:
        return result
    stored = _stored(conn, existing)
    conflicts = []
    for key in sorted(existing):
        if parse_rate(stored[key]) == parse_rate(wanted[key]):
            result.unchanged += 1
        else:
            conflicts.append((key[0], key[1], stored[key], wanted[key]))
    if conflicts and not replace:
        raise RatesConflict(conflicts)
    for day, cur, _, given in conflicts:
        conn.execute(
            rates.update()
            .where(rates.c.date == day, rates.c.currency == cur)
            .values(rate=given, source=source, imported_at=sa.func.now())
        )
    result.replaced = len(conflicts)
    return result


def _stored(conn: sa.Connection, keys: Sequence[tuple[date, str]]) -> dict[tuple[date, str], str]:
    first, last = min(d for d, _ in keys), max(d for d, _ in keys)
    rows = conn.execute(
        sa.select(rates.c.date, rates.c.currency, rates.c.rate).where(rates.c.date.between(first, last))
    ).all()
    return {(d, c): v for d, c, v in rows}


def load_window(conn: sa.Connection, first: date, last: date) -> RateTable:
    """Every stored rate published from ``first`` to ``last`` (both included), all currencies: what
    :meth:`RateTable.period_end_rate` needs to tell a day without publication from a day not imported."""
    rows = conn.execute(
        sa.select(rates.c.date, rates.c.currency, rates.c.rate).where(rates.c.date.between(first, last))
    ).all()
    return RateTable((d, c, v) for d, c, v in rows)


def period_end_window(last_day: date) -> tuple[date, date]:
    """The days :func:`load_window` must cover for a period ending on ``last_day``."""
    return last_day, last_day + timedelta(days=WINDOW_DAYS)


def load_latest(conn: sa.Connection, currencies: Iterable[str], on_or_before: date) -> RateTable:
    """For each of ``currencies``, its most recent stored rate published on or before ``on_or_before`` (a
    currency never imported is absent; :meth:`RateTable.latest_rate` then raises)."""
    wanted = sorted({c.lower() for c in currencies} - {EURO})
    if not wanted:
        return RateTable()
    newest = (
        sa.select(rates.c.currency, sa.func.max(rates.c.date).label("day"))
        .where(rates.c.currency.in_(wanted), rates.c.date <= on_or_before)
        .group_by(rates.c.currency)
        .subquery()
    )
    rows = conn.execute(
        sa.select(rates.c.date, rates.c.currency, rates.c.rate).join(
            newest, sa.and_(rates.c.currency == newest.c.currency, rates.c.date == newest.c.day)
        )
    ).all()
    return RateTable((d, c, v) for d, c, v in rows)


def listing(
    conn: sa.Connection, currency: str | None = None, first: date | None = None, last: date | None = None
) -> list[dict[str, object]]:
    """Stored rates, newest first: ``{"date", "currency", "rate", "source"}``, optionally one currency and a
    date range."""
    stmt = sa.select(rates.c.date, rates.c.currency, rates.c.rate, rates.c.source).order_by(
        rates.c.date.desc(), rates.c.currency
    )
    if currency:
        stmt = stmt.where(rates.c.currency == currency.strip().lower())
    if first:
        stmt = stmt.where(rates.c.date >= first)
    if last:
        stmt = stmt.where(rates.c.date <= last)
    return [{"date": d.isoformat(), "currency": c, "rate": r, "source": s} for d, c, r, s in conn.execute(stmt).all()]
