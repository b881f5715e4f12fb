"""VAT rates: the rates file, parsed once and passed in, and the rate in force on a date.

``config/vat_rates.json`` holds the 27 member states, each a list of periods with the date they took effect.
:func:`load_vat_rates` reads and validates a file; nothing is read at import.  A process loads the shipped file
once (:func:`shipped_vat_rates`) and hands the :class:`VatRates` to what needs it (the ``vat`` stage), so a
malformed file is refused with :class:`VatDataError` before any payment is taxed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, get_args

from engine.domain.vat.countries import EU_MEMBER_STATES, normalize_country
from engine.domain.vat.errors import VatDataError, VatRateUnavailable

Category = Literal["standard", "reduced", "super_reduced"]

#: The rates file shipped with the package (``config/vat_rates.json``).
VAT_RATES_PATH: Traversable = resources.files("config") / "vat_rates.json"

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class RatePeriod:
    """The rates of one member state from ``start`` until the next period starts."""

    start: date
    standard: Decimal
    reduced: tuple[Decimal, ...]
    super_reduced: Decimal | None

    def rate(self, category: Category) -> Decimal:
        """The rate of a category: ``reduced`` is the highest reduced rate, ``super_reduced`` the super-reduced
        rate or else the lowest reduced rate; without either the standard rate.  Raises :class:`ValueError` for
        an unknown category."""
        if category == "standard":
            return self.standard
        if category == "reduced":
            return max(self.reduced) if self.reduced else self.standard
        if category == "super_reduced":
            if self.super_reduced is not None:
                return self.super_reduced
            return min(self.reduced) if self.reduced else self.standard
        raise ValueError(f"unknown tax category {category!r} (one of {', '.join(get_args(Category))})")


@dataclass(frozen=True, slots=True)
class MemberState:
    """A member state: ISO code (``GR`` for Greece), name, VAT id prefix (``EL``) and its rate periods, oldest
    first."""

    code: str
    name: str
    vat_prefix: str
    periods: tuple[RatePeriod, ...]

    def period_at(self, at: date) -> RatePeriod:
        """The period in force on ``at``.  Raises :class:`VatRateUnavailable` before the first period."""
        found: RatePeriod | None = None
        for period in self.periods:
            if period.start > at:
                break
            found = period
        if found is None:
            raise VatRateUnavailable(f"no VAT rates for {self.code} before {self.periods[0].start.isoformat()}")
        return found


@dataclass(frozen=True, slots=True)
class VatRates:
    """The loaded rate table: every member state by ISO code, and where the data came from."""

    states: Mapping[str, MemberState]
    coverage_from: date
    sources: tuple[str, ...]
    path: str

    def state(self, country: str) -> MemberState:
        """The member state for a country code (either case, ``EL`` accepted).  Raises
        :class:`VatRateUnavailable` for a country outside the EU."""
        cc = normalize_country(country)
        found = self.states.get(cc)
        if found is None:
            raise VatRateUnavailable(f"{cc} is not an EU member state")
        return found

    def rate(self, country: str, category: Category, at: date) -> Decimal:
        """Same as :func:`rate_for` on this table."""
        return self.state(country).period_at(utc_date(at)).rate(category)


def load_vat_rates(path: str | Path | Traversable = VAT_RATES_PATH) -> VatRates:
    """Read and validate a rates file (default: the shipped ``config/vat_rates.json``).

    Checks: exactly the 27 member states; each with a name, a two-letter VAT prefix and at least one period;
    the first period of every state starts on ``coverage_from``; periods strictly in date order; rates are
    decimal strings with standard in 15–30 %, reduced rates below standard, a super-reduced rate below 5 % and
    below every reduced rate.  Raises :class:`VatDataError` naming the file and the entry otherwise.
    """
    file = Path(path) if isinstance(path, str) else path
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VatDataError(f"{file}: cannot read VAT rates: {exc}") from exc
    try:
        return _parse(raw, str(file))
    except VatDataError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VatDataError(f"{file}: malformed VAT rates: {exc!r}") from exc


@functools.cache
def shipped_vat_rates() -> VatRates:
    """The shipped rates file, loaded and validated once per process.  Raises :class:`VatDataError`."""
    return load_vat_rates(VAT_RATES_PATH)


def _parse(raw: Any, where: str) -> VatRates:
    def fail(msg: str) -> VatDataError:
        return VatDataError(f"{where}: {msg}")

    if not isinstance(raw, dict):
        raise fail("the top level must be an object")
    coverage_from = _parse_date(raw.get("coverage_from"), "coverage_from", fail)
    states_raw = raw.get("states")
    if not isinstance(states_raw, dict):
        raise fail("'states' must be an object keyed by country code")
    missing = EU_MEMBER_STATES - states_raw.keys()
    extra = states_raw.keys() - EU_MEMBER_STATES
    if missing or extra:
        raise fail(f"'states' must hold exactly the 27 member states; missing {sorted(missing)}, extra {sorted(extra)}")
    states: dict[str, MemberState] = {}
    for code, entry in sorted(states_raw.items()):
        ctx = f"states.{code}"
        if not isinstance(entry, dict):
            raise fail(f"{ctx} must be an object")
        name = entry.get("name")
        prefix = entry.get("vat_prefix")
        if not isinstance(name, str) or not name:
            raise fail(f"{ctx}.name must be a non-empty string")
        if not isinstance(prefix, str) or len(prefix) != 2 or not prefix.isalpha() or not prefix.isupper():
            raise fail(f"{ctx}.vat_prefix must be two upper-case letters")
        periods_raw = entry.get("periods")
        if not isinstance(periods_raw, list) or not periods_raw:
            raise fail(f"{ctx}.periods must be a non-empty list")
        periods: list[RatePeriod] = []
        for i, p in enumerate(periods_raw):
            pctx = f"{ctx}.periods[{i}]"
            if not isinstance(p, dict):
                raise fail(f"{pctx} must be an object")
            start = _parse_date(p.get("from"), f"{pctx}.from", fail)
            standard = _parse_rate(p.get("standard"), f"{pctx}.standard", fail)
            reduced_raw = p.get("reduced")
            if not isinstance(reduced_raw, list):
                raise fail(f"{pctx}.reduced must be a list (empty when the state has no reduced rate)")
            reduced = tuple(sorted(_parse_rate(r, f"{pctx}.reduced", fail) for r in reduced_raw))
            sr_raw = p.get("super_reduced")
            super_reduced = None if sr_raw is None else _parse_rate(sr_raw, f"{pctx}.super_reduced", fail)
            if not Decimal(15) <= standard <= Decimal(30):
                raise fail(f"{pctx}.standard {standard} is outside 15–30 %")
            if len(set(reduced)) != len(reduced) or any(not _ZERO < r < standard for r in reduced):
                raise fail(f"{pctx}.reduced must be distinct rates above 0 and below the standard rate")
            if super_reduced is not None and not (
                _ZERO < super_reduced < Decimal(5) and all(super_reduced < r for r in reduced)
            ):
                raise fail(f"{pctx}.super_reduced must be above 0, below 5 % and below every reduced rate")
            if periods and start <= periods[-1].start:
                raise fail(f"{pctx}.from must come after the previous period's")
            periods.append(RatePeriod(start, standard, reduced, super_reduced))
        if periods[0].start != coverage_from:
            raise fail(f"{ctx}: the first period must start on coverage_from ({coverage_from.isoformat()})")
        states[code] = MemberState(code=code, name=name, vat_prefix=prefix, periods=tuple(periods))
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) for s in sources):
        raise fail("'sources' must be a non-empty list of strings: say where the rates come from")
    return VatRates(states=states, coverage_from=coverage_from, sources=tuple(sources), path=where)


def _parse_date(value: Any, ctx: str, fail: Any) -> date:
    if not isinstance(value, str):
        raise fail(f"{ctx} must be an ISO date string")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{ctx} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _parse_rate(value: Any, ctx: str, fail: Any) -> Decimal:
    # Strings only: a JSON number would go through float on the way in and 25.5 must stay exactly 25.5.
    if not isinstance(value, str):
        raise fail(f'{ctx} must be a decimal string such as "23" or "25.5", got {value!r}')
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise fail(f"{ctx} {value!r} is not a decimal number") from None
    if not rate.is_finite() or rate < 0 or rate.as_tuple().exponent < -2:  # type: ignore[operator]
        raise fail(f"{ctx} {value!r} must be a finite, non-negative percentage with at most two decimals")
    return rate


# -- lookups ------------------------------------------------------------------------------------------------------


def rate_for(country: str, category: Category = "standard", at: date | None = None, *, rates: VatRates) -> Decimal:
    """The VAT rate (percent) of ``category`` in ``country`` in force on ``at`` (default: today, UTC).

    A ``datetime`` is read as its UTC date.  Raises :class:`VatRateUnavailable` for a country outside the EU or a
    date before the data's coverage, :class:`ValueError` for an unknown category.
    """
    return rates.rate(country, category, utc_date(at if at is not None else datetime.now(UTC)))


def format_rate(rate: Decimal) -> str:
    """A rate as the API renders it (``docs/api.md``): ``Decimal("23.0")`` → ``"23"``, ``Decimal("25.50")`` →
    ``"25.5"``, ``0`` → ``"0"``."""
    if rate == 0:
        return "0"
    return format(rate.normalize(), "f")


def utc_date(at: date | datetime) -> date:
    """``at`` itself for a date; the UTC date of a datetime (a naive one is taken as UTC).  Raises
    :class:`TypeError` for anything else."""
    if isinstance(at, datetime):
        if at.tzinfo is not None:
            at = at.astimezone(UTC)
        return at.date()
    if isinstance(at, date):
        return at
    raise TypeError(f"expected a date or datetime, got {type(at).__name__}")
