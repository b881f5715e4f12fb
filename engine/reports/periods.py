"""Report periods: a quarter (``2026-Q4``), a month (``2026-11``) or a day (``2026-11-30``), in UTC.

A period covers the ledger transactions booked from its first day 00:00 UTC up to (not including) the day after
its last day.  :func:`parse_period` refuses a malformed label with :class:`PeriodError` naming the request field,
and :func:`check_started` a period that has not begun.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from engine.errors import InvalidInput

PeriodKind = Literal["quarter", "month", "day"]

_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIRST_YEAR = 2000


class PeriodError(InvalidInput):
    """A period label that is malformed, of a kind the report does not take, or not started.  ``param`` names the
    request field (``period``, ``date``); ``code`` is ``period_invalid`` or ``period_not_started``."""

    def __init__(self, message: str, param: str = "period", code: str = "period_invalid") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class Period:
    """``first`` to ``last`` (both included) of a ``kind``; ``label`` as written (``2026-Q4``)."""

    kind: PeriodKind
    label: str
    first: date
    last: date

    @property
    def start(self) -> datetime:
        """The first instant of the period (UTC)."""
        return datetime.combine(self.first, time.min, UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period (UTC), excluded."""
        return datetime.combine(self.last + timedelta(days=1), time.min, UTC)

    def contains(self, at: datetime) -> bool:
        """True when ``at`` (timezone-aware) falls in the period."""
        return self.start <= at < self.end

    def in_progress(self, today: date) -> bool:
        """True when ``today`` is inside the period (its figures are not final yet)."""
        return self.first <= today <= self.last


def quarter(year: int, number: int) -> Period:
    """Quarter ``number`` (1–4) of ``year``."""
    first = date(year, 3 * number - 2, 1)
    last = (date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)) - timedelta(days=1)
    return Period("quarter", f"{year}-Q{number}", first, last)


def quarter_of(day: date) -> Period:
    """The quarter ``day`` falls in."""
    return quarter(day.year, (day.month - 1) // 3 + 1)


def month(year: int, number: int) -> Period:
    """Month ``number`` (1–12) of ``year``."""
    first = date(year, number, 1)
    last = (date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)) - timedelta(days=1)
    return Period("month", f"{year}-{number:02d}", first, last)


def parse_period(text: object, kinds: tuple[PeriodKind, ...], param: str = "period") -> Period:
    """The period a label names, if it is one of ``kinds``.

    ``2026-Q4`` (also ``2026-q4``) is a quarter, ``2026-11`` a month, ``2026-11-30`` a day.  Raises
    :class:`PeriodError` (``param`` names the field) for anything else, a kind not in ``kinds``, or a year
    before 2000.
    """
    if not isinstance(text, str) or not text.strip():
        raise PeriodError(f"{param} is required ({_spelling(kinds)})", param)
    label = text.strip()
    found: Period | None = None
    if m := _QUARTER.match(label):
        found = quarter(int(m.group(1)), int(m.group(2)))
    elif m := _MONTH.match(label):
        number = int(m.group(2))
        if not 1 <= number <= 12:
            raise PeriodError(f"{param} {label!r}: there is no month {number}", param)
        found = month(int(m.group(1)), number)
    elif _DAY.match(label):
        try:
            day = date.fromisoformat(label)
        except ValueError:
            raise PeriodError(f"{param} {label!r} is not a date", param) from None
        found = Period("day", day.isoformat(), day, day)
    if found is None:
        raise PeriodError(f"{param} {label!r} is malformed ({_spelling(kinds)})", param)
    if found.kind not in kinds:
        raise PeriodError(f"{param} {label!r} is a {found.kind}; this report takes {_spelling(kinds)}", param)
    if found.first.year < _FIRST_YEAR:
        raise PeriodError(f"{param} {label!r} is before {_FIRST_YEAR}", param)
    return found


def check_started(period: Period, today: date, param: str = "period") -> None:
    """Raise :class:`PeriodError` (``period_not_started``) when ``period`` begins after ``today``."""
    if period.first > today:
        raise PeriodError(
            f"{param} {period.label} has not started (it begins on {period.first.isoformat()})",
            param,
            "period_not_started",
        )


def _spelling(kinds: tuple[PeriodKind, ...]) -> str:
    examples = {"quarter": "a quarter like 2026-Q4", "month": "a month like 2026-11", "day": "a day like 2026-11-30"}
    return " or ".join(examples[k] for k in kinds)
