"""Minor units converted between currencies at the ECB's euro reference rates, by the rule of the OSS regulation.

A rate is what the European Central Bank publishes: units of a currency for one euro (SEK 11.3675 on
2024-07-01), kept as the decimal it was published as, never a float.  Article 366 of the VAT Directive (the OSS
return) converts at "the exchange rate published by the European Central Bank for the last day of the tax period
or, if there is no publication on that day, on the next day of publication": :meth:`RateTable.period_end_rate`.
The ECB publishes on every TARGET business day, so a day without a publication is a weekend or a TARGET closing
day (New Year's Day, Good Friday, Easter Monday, 1 May, 25 and 26 December); a business day whose publication is
not in the table is *missing* (not imported yet), and taking the next day's rate instead would be a guess:
:class:`RateMissing` is raised.

Conversions are exact (the decimal rates as fractions) and round half up (ties away from zero) to the target
currency's ISO 4217 exponent, in the API's minor units (:mod:`engine.domain.money`): cents for EUR and SEK, whole
forints' hundredths for HUF, yen for JPY, whole krónur (a multiple of 100) for ISK.  This module does no I/O;
:mod:`engine.db.rates` stores the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from engine.domain.money import currency as _currency
from engine.domain.money import round_half_up_to
from engine.errors import InvalidInput, NotFoundError

__all__ = [
    "EURO",
    "InvalidRate",
    "Rate",
    "RateMissing",
    "RateTable",
    "convert",
    "easter_sunday",
    "ecb_closed",
    "parse_rate",
]

EURO = "eur"
# A published rate: digits, optionally a fraction ("11.3675", "394.25", "1.9558", "1"); never an exponent.
_RATE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_CURRENCY = re.compile(r"^[a-z]{3}$")
# The longest run of days without a publication is four (Good Friday to Easter Monday; 25 December on a Friday
# to 28 December); the walk of the "next publication" rule stops well after that.
_MAX_WALK_DAYS = 10


class InvalidRate(InvalidInput):
    """A rate that is not a positive decimal string (``"11.3675"``), or a currency that is not three letters."""


class RateMissing(NotFoundError):
    """No ECB reference rate for ``currency`` on ``day``: not imported, not published for that currency, or no
    publication at all on or before the day.  ``code`` is the job error code; the message names both."""

    code = "rate_missing"

    def __init__(self, currency: str, day: date, reason: str) -> None:
        super().__init__(f"no ECB reference rate for {currency.upper()} on {day.isoformat()}: {reason}")
        self.currency = currency.lower()
        self.day = day
        self.reason = reason


def parse_rate(value: str | Decimal) -> Decimal:
    """The rate as a :class:`~decimal.Decimal`, exactly as written.  Raises :class:`InvalidRate` unless ``value``
    is a positive decimal (``"11.3675"``; no sign, no exponent, no float)."""
    if isinstance(value, Decimal):
        if not value.is_finite() or value <= 0:
            raise InvalidRate(f"a rate must be a positive decimal, got {value}")
        return value
    if not isinstance(value, str) or not _RATE.match(value.strip()):
        raise InvalidRate(f"a rate must be a positive decimal string like '11.3675', got {value!r}")
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
        raise InvalidRate(f"not a decimal: {value!r}") from exc
    if parsed <= 0:
        raise InvalidRate(f"a rate must be positive, got {value!r}")
    return parsed


def _currency_code(code: str) -> str:
    cur = code.strip().lower() if isinstance(code, str) else ""
    if not _CURRENCY.match(cur):
        raise InvalidRate(f"a currency must be an ISO 4217 code, got {code!r}")
    return cur


@dataclass(frozen=True, slots=True)
class Rate:
    """``value`` units of ``currency`` (lower case) for one euro, as published for ``day``.  The euro's own rate
    is 1 on every day (:meth:`euro`)."""

    currency: str
    day: date
    value: Decimal

    @classmethod
    def euro(cls, day: date) -> Rate:
        """The euro against itself: 1."""
        return cls(EURO, day, Decimal(1))

    def to_json(self) -> dict[str, str]:
        """``{"currency", "date", "rate"}`` with the rate as the decimal string it was published as."""
        return {"currency": self.currency, "date": self.day.isoformat(), "rate": str(self.value)}


def easter_sunday(year: int) -> date:
    """Easter Sunday of ``year`` in the Gregorian calendar (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def ecb_closed(day: date) -> bool:
    """True when the ECB publishes no reference rates on ``day``: a Saturday, a Sunday or a TARGET closing day
    (1 January, Good Friday, Easter Monday, 1 May, 25 and 26 December)."""
    if day.weekday() >= 5:
        return True
    if (day.month, day.day) in {(1, 1), (5, 1), (12, 25), (12, 26)}:
        return True
    easter = easter_sunday(day.year)
    return day in (easter - timedelta(days=2), easter + timedelta(days=1))


class RateTable:
    """ECB reference rates held in memory, by publication day and currency (the rows of the ``rates`` table or
    of an ECB file).  Lookups never interpolate and never borrow another day's rate except by the OSS rule."""

    def __init__(self, rows: Iterable[tuple[date, str, str | Decimal]] = ()) -> None:
        self._days: dict[date, dict[str, Decimal]] = {}
        for day, code, value in rows:
            self.add(day, code, value)

    def add(self, day: date, code: str, value: str | Decimal) -> None:
        """Record ``value`` units of ``code`` per euro on ``day``.  Raises :class:`InvalidRate` for a malformed
        rate or currency, and :class:`ValueError` when the day already has another rate for the currency."""
        cur = _currency_code(code)
        rate = parse_rate(value)
        day_rates = self._days.setdefault(day, {})
        known = day_rates.get(cur)
        if known is not None and known != rate:
            raise ValueError(f"two rates for {cur.upper()} on {day.isoformat()}: {known} and {rate}")
        day_rates[cur] = rate

    def __len__(self) -> int:
        return sum(len(rates) for rates in self._days.values())

    @property
    def days(self) -> list[date]:
        """The publication days held, oldest first."""
        return sorted(self._days)

    def rate_on(self, code: str, day: date) -> Rate | None:
        """The rate published for ``day``, or None (the euro: always 1)."""
        cur = _currency_code(code)
        if cur == EURO:
            return Rate.euro(day)
        value = self._days.get(day, {}).get(cur)
        return Rate(cur, day, value) if value is not None else None

    def period_end_rate(self, code: str, last_day: date) -> Rate:
        """The rate the OSS return converts a period ending on ``last_day`` at: the one published for that day,
        or when the ECB published nothing that day (weekend, TARGET holiday), at its next publication.

        Raises :class:`RateMissing` naming the currency and the day when that publication is not in the table
        (a business day not imported yet) or has no rate for the currency.
        """
        cur = _currency_code(code)
        day = last_day
        for _ in range(_MAX_WALK_DAYS):
            found = self.rate_on(cur, day)
            if found is not None:
                return found
            if day in self._days:
                raise RateMissing(cur, day, f"the ECB's publication of {day.isoformat()} has no {cur.upper()} rate")
            if not ecb_closed(day):
                why = "that publication is not imported (payments rates import)"
                if day != last_day:
                    why = f"none was published on {last_day.isoformat()} and the next publication is not imported"
                raise RateMissing(cur, day, why)
            day += timedelta(days=1)
        raise RateMissing(cur, last_day, f"no publication within {_MAX_WALK_DAYS} days")  # pragma: no cover

    def latest_rate(self, code: str, on_or_before: date) -> Rate:
        """The most recent rate for ``code`` published on or before ``on_or_before`` (the preliminary return's
        rate).  Raises :class:`RateMissing` when the table has none."""
        cur = _currency_code(code)
        if cur == EURO:
            return Rate.euro(on_or_before)
        for day in sorted((d for d in self._days if d <= on_or_before), reverse=True):
            value = self._days[day].get(cur)
            if value is not None:
                return Rate(cur, day, value)
        raise RateMissing(cur, on_or_before, "no rate for it was ever imported on or before that day")


def convert(amount: int, source: Rate, target: Rate) -> int:
    """``amount`` minor units of ``source.currency`` in minor units of ``target.currency``, through the euro:
    ``amount / 10^e(source) / source.value * target.value * 10^e(target)``, exact, then rounded half up to the
    target's ISO 4217 exponent (a multiple of 100 for ISK).

    Raises :class:`TypeError` for a non-integer amount and :class:`engine.domain.money.UnknownCurrency` for a
    currency without a known exponent.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int of minor units, got {type(amount).__name__}")
    src, dst = _currency(source.currency), _currency(target.currency)
    if src.code == dst.code and source.value == target.value:
        return round_half_up_to(amount, dst.iso_step)
    exact = Fraction(amount) * Fraction(target.value) * 10**dst.exponent / (Fraction(source.value) * 10**src.exponent)
    return round_half_up_to(exact, dst.iso_step)
