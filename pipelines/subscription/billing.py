"""Subscription arithmetic, free of I/O: billing periods, proration and the customer's credit balance.

Periods follow Stripe's billing-cycle anchor: period ``n`` ends ``n + 1`` intervals after the anchor, the day of
month clamped to the month's length and recomputed from the anchor each time, so a subscription anchored on
31 January renews on 28/29 February, then 31 March (never drifting to the 28th).

Proration is by the second and in integer minor units: the prorated amount is the exact fraction
``Δamount × remaining seconds / period seconds`` rounded once, half up (ties away from zero), to the currency's
step (10 for three-decimal currencies such as KWD).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from engine.domain.money import currency as currency_of
from engine.domain.money import round_half_up_to
from engine.domain.plans import Plan


def add_intervals(anchor: datetime, interval: str, count: int) -> datetime:
    """``anchor`` plus ``count`` months or years, the day clamped to the target month's length (time kept).

    Raises :class:`ValueError` for an unknown interval or a negative count.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if interval == "month":
        months = count
    elif interval == "year":
        months = 12 * count
    else:
        raise ValueError(f"unknown interval {interval!r}")
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_bounds(anchor: datetime, interval: str, index: int) -> tuple[datetime, datetime]:
    """Start and end of period ``index`` (0 = the first) of a subscription anchored at ``anchor``."""
    return add_intervals(anchor, interval, index), add_intervals(anchor, interval, index + 1)


def whole_seconds(value: datetime) -> datetime:
    """``value`` truncated to the second (proration counts whole seconds, as Stripe's timestamps do)."""
    return value.replace(microsecond=0)


def _remaining(start: datetime, end: datetime, at: datetime) -> Fraction:
    total = int((whole_seconds(end) - whole_seconds(start)).total_seconds())
    if total <= 0:
        raise ValueError("a period must end after it starts")
    moment = min(max(whole_seconds(at), whole_seconds(start)), whole_seconds(end))
    return Fraction(int((whole_seconds(end) - moment).total_seconds()), total)


def prorate(amount: int, start: datetime, end: datetime, at: datetime, currency: str) -> int:
    """The share of ``amount`` (minor units) for the rest of the period ``[start, end)`` from ``at``.

    ``at`` is clamped into the period.  Rounded once, half up, to the currency's step.
    Raises :class:`ValueError` when the period is empty and ``UnknownCurrency`` for an unknown currency.
    """
    return round_half_up_to(amount * _remaining(start, end, at), currency_of(currency).step)


def proration_difference(old: int, new: int, start: datetime, end: datetime, at: datetime, currency: str) -> int:
    """What switching from a price of ``old`` to ``new`` at ``at`` costs for the rest of ``[start, end)``.

    Positive: an upgrade, charged at once.  Negative: a downgrade, credited on the next renewal.  The difference
    is prorated in one exact step and rounded once (half up, to the currency's step), so it is never off by the
    rounding of two separate halves.
    """
    return round_half_up_to((new - old) * _remaining(start, end, at), currency_of(currency).step)


@dataclass(frozen=True)
class Due:
    """What a charge against the customer's balance comes to.

    ``charge``: net minor units to charge now (0 = nothing); ``balance``: the credit balance afterwards (positive:
    credit the customer has; negative: an amount too small to charge, carried to the next invoice as Stripe does);
    ``applied``: how much of the balance this charge used (positive: credit applied, negative: debt added).
    """

    charge: int
    balance: int
    applied: int


def settle_due(amount: int, balance: int, currency: str) -> Due:
    """Apply the customer's ``balance`` to ``amount`` (both net minor units).

    A result below the currency's smallest chargeable amount is not charged but carried in the balance.
    """
    due = amount - balance
    if due >= currency_of(currency).smallest_charge:
        return Due(charge=due, balance=0, applied=balance)
    return Due(charge=0, balance=-due, applied=amount)


def credit_to_apply(credit: int, total: int, currency: str) -> int:
    """How much of the customer's booked ``credit`` (gross, minor units) pays an invoice of ``total``: all of it up
    to the total, except that what is left to charge is never positive and below the currency's smallest chargeable
    amount (Stripe cannot charge it): then that smallest amount is charged and the rest of the credit kept.
    0 without credit; never more than ``credit`` or ``total``.
    """
    if credit <= 0 or total <= 0:
        return 0
    applied = min(credit, total)
    smallest = currency_of(currency).smallest_charge
    if 0 < total - applied < smallest:
        applied = max(total - smallest, 0)
    return applied


@dataclass(frozen=True)
class PlanChange:
    """The effect of ``/change``: ``difference`` (net, signed) and the period the subscription is in afterwards."""

    difference: int
    anchor: datetime
    index: int
    period_start: datetime
    period_end: datetime
    reset: bool


def change_plan(
    old: Plan, new: Plan, anchor: datetime, index: int, start: datetime, end: datetime, at: datetime
) -> PlanChange:
    """Switch from ``old`` to ``new`` at ``at`` within the current period ``[start, end)``.

    Same interval: the period stays, the difference is prorated.  Another interval (monthly → yearly): the billing
    cycle restarts at ``at`` (as Stripe does), the new plan is billed in full less the unused share of the old.
    Raises :class:`ValueError` when the plans' currencies differ.
    """
    if old.currency != new.currency:
        raise ValueError(f"cannot change from a {old.currency.upper()} plan to a {new.currency.upper()} plan")
    if old.interval == new.interval:
        diff = proration_difference(old.amount, new.amount, start, end, at, new.currency)
        return PlanChange(diff, anchor, index, start, end, reset=False)
    moment = whole_seconds(min(max(at, start), end))
    unused = prorate(old.amount, start, end, moment, old.currency)
    new_end = add_intervals(moment, new.interval, 1)
    return PlanChange(new.amount - unused, moment, 0, moment, new_end, reset=True)


def retry_at(period_start: datetime, schedule_days: tuple[int, ...], failed_attempt: int) -> datetime | None:
    """When to retry after attempt ``failed_attempt`` (1 = the renewal itself) failed, counted from the period's
    start; None when that was the last attempt (the subscription is canceled)."""
    if failed_attempt > len(schedule_days):
        return None
    return period_start + timedelta(days=schedule_days[failed_attempt - 1])


def parse_schedule(value: str) -> tuple[int, ...]:
    """``"1,3,5"`` → ``(1, 3, 5)``.  Raises :class:`ValueError` unless the days are positive and increasing."""
    days = tuple(int(part) for part in value.split(",") if part.strip())
    if not days or any(d <= 0 for d in days) or list(days) != sorted(set(days)):
        raise ValueError(f"dunning schedule must be increasing positive days, got {value!r}")
    return days
