"""Period and proration arithmetic: month ends as Stripe does them, by-the-second proration, half-up rounding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.domain.plans import Plan
from pipelines.subscription.billing import (
    add_intervals,
    change_plan,
    parse_schedule,
    period_bounds,
    prorate,
    proration_difference,
    retry_at,
    settle_due,
)


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("anchor", "count", "expected"),
    [
        (t(2027, 1, 31, 9, 30), 1, t(2027, 2, 28, 9, 30)),
        (t(2028, 1, 31, 9, 30), 1, t(2028, 2, 29, 9, 30)),
        (t(2027, 1, 31), 2, t(2027, 3, 31)),
        (t(2027, 1, 30), 1, t(2027, 2, 28)),
        (t(2026, 12, 15), 1, t(2027, 1, 15)),
        (t(2026, 11, 30), 3, t(2027, 2, 28)),
        (t(2027, 5, 31), 1, t(2027, 6, 30)),
    ],
)
def test_months_clamp_to_the_month_end(anchor: datetime, count: int, expected: datetime) -> None:
    assert add_intervals(anchor, "month", count) == expected


def test_periods_are_counted_from_the_anchor_not_from_the_previous_end() -> None:
    anchor = t(2027, 1, 31, 12)
    ends = [period_bounds(anchor, "month", i)[1] for i in range(4)]
    # Feb 28 does not drag March to the 28th: each end comes from the anchor, as Stripe's billing_cycle_anchor.
    assert ends == [t(2027, 2, 28, 12), t(2027, 3, 31, 12), t(2027, 4, 30, 12), t(2027, 5, 31, 12)]
    assert period_bounds(anchor, "month", 1) == (t(2027, 2, 28, 12), t(2027, 3, 31, 12))


def test_years_clamp_leap_day() -> None:
    assert add_intervals(t(2028, 2, 29), "year", 1) == t(2029, 2, 28)
    assert add_intervals(t(2028, 2, 29), "year", 4) == t(2032, 2, 29)
    with pytest.raises(ValueError):
        add_intervals(t(2028, 2, 29), "week", 1)
    with pytest.raises(ValueError):
        add_intervals(t(2028, 2, 29), "month", -1)


def test_proration_is_by_the_second_and_rounds_half_up() -> None:
    start, end = t(2027, 1, 1), t(2027, 1, 1) + timedelta(seconds=1000)
    # 2000 cents × 1/4 remaining = 500 exactly.
    assert proration_difference(900, 2900, start, end, start + timedelta(seconds=750), "eur") == 500
    # 1 cent × 500/1000 = 0.5 → 1 (half up); the downgrade's -0.5 → -1 (ties away from zero, symmetric).
    assert proration_difference(0, 1, start, end, start + timedelta(seconds=500), "eur") == 1
    assert proration_difference(1, 0, start, end, start + timedelta(seconds=500), "eur") == -1
    # 2000 × 333/1000 = 666 exactly; 2000 × 1/3 of a 3-second period = 666.67 → 667.
    assert proration_difference(900, 2900, start, end, start + timedelta(seconds=667), "eur") == 666
    third = t(2027, 1, 1) + timedelta(seconds=3)
    assert proration_difference(900, 2900, start, third, start + timedelta(seconds=2), "eur") == 667
    # Sub-second parts are ignored (whole seconds, as Stripe's timestamps).
    at = start + timedelta(seconds=750, microseconds=999_999)
    assert proration_difference(900, 2900, start, end, at, "eur") == 500


def test_proration_clamps_the_moment_into_the_period() -> None:
    start, end = t(2027, 1, 1), t(2027, 2, 1)
    assert prorate(3100, start, end, start - timedelta(days=3), "eur") == 3100
    assert prorate(3100, start, end, end + timedelta(days=3), "eur") == 0


def test_a_real_month_upgrade() -> None:
    start, end = t(2027, 3, 1), t(2027, 4, 1)  # 31 days = 2,678,400 s
    at = t(2027, 3, 11, 6)  # 20 days 18 hours remaining = 1,792,800 s
    # 2000 × 1792800 / 2678400 = 1338.709… → 1339
    assert proration_difference(900, 2900, start, end, at, "eur") == 1339


def test_zero_decimal_and_three_decimal_currencies() -> None:
    start, end = t(2027, 1, 1), t(2027, 1, 1) + timedelta(seconds=3)
    at = start + timedelta(seconds=1)
    # JPY: 1000 yen × 2/3 = 666.67 → 667 yen (the yen is the minor unit).
    assert proration_difference(500, 1500, start, end, at, "jpy") == 667
    # KWD: 10.000 KWD × 2/3 = 6666.67 fils → 6670 (three-decimal amounts end in 0 on Stripe).
    assert proration_difference(5000, 15000, start, end, at, "kwd") == 6670
    assert proration_difference(15000, 5000, start, end, at, "kwd") == -6670
    # 0.005 KWD rounds half up to 0.010.
    half = start + timedelta(seconds=1)
    assert proration_difference(0, 15, start, half + timedelta(seconds=1), half, "kwd") == 10


def test_settle_due_applies_credit_and_carries_what_cannot_be_charged() -> None:
    assert settle_due(900, 0, "eur").charge == 900
    assert settle_due(900, 300, "eur") == settle_due(900, 300, "eur")
    paid = settle_due(900, 300, "eur")
    assert (paid.charge, paid.balance, paid.applied) == (600, 0, 300)
    covered = settle_due(900, 1000, "eur")
    assert (covered.charge, covered.balance) == (0, 100)
    tiny = settle_due(900, 880, "eur")  # 20 cents is below Stripe's EUR minimum (50): carried as a debt
    assert (tiny.charge, tiny.balance) == (0, -20)
    debt = settle_due(900, -20, "eur")
    assert (debt.charge, debt.balance, debt.applied) == (920, 0, -20)


PLAN = {"name": "x", "currency": "eur", "tax_category": "standard", "trial_days": 0}


def test_change_same_interval_keeps_the_period_and_another_interval_resets_it() -> None:
    basic = Plan(id="b", amount=900, interval="month", **PLAN)  # type: ignore[arg-type]
    pro = Plan(id="p", amount=2900, interval="month", **PLAN)  # type: ignore[arg-type]
    yearly = Plan(id="y", amount=29000, interval="year", **PLAN)  # type: ignore[arg-type]
    start, end = t(2027, 4, 1), t(2027, 5, 1)  # 30 days
    mid = t(2027, 4, 16)
    same = change_plan(basic, pro, start, 3, start, end, mid)
    assert (same.difference, same.period_start, same.period_end, same.reset) == (1000, start, end, False)
    assert change_plan(pro, basic, start, 3, start, end, mid).difference == -1000
    reset = change_plan(pro, yearly, start, 3, start, end, mid)
    assert reset.reset and reset.period_start == mid and reset.period_end == t(2028, 4, 16)
    assert reset.difference == 29000 - 1450
    other = Plan(id="j", amount=500, interval="month", **{**PLAN, "currency": "jpy"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        change_plan(basic, other, start, 0, start, end, mid)


def test_dunning_schedule() -> None:
    days = parse_schedule("1,3,5")
    start = t(2027, 2, 28)
    assert [retry_at(start, days, n) for n in (1, 2, 3, 4)] == [t(2027, 3, 1), t(2027, 3, 3), t(2027, 3, 5), None]
    for bad in ("", "3,1", "0,1", "1,1", "x"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


@pytest.mark.parametrize(
    ("credit", "total", "applied"),
    [
        (0, 1107, 0),  # no credit
        (410, 1107, 410),  # part: Stripe charges 697
        (1107, 1107, 1107),  # all of it: nothing charged
        (5000, 1107, 1107),  # more: the rest carries over
        (1090, 1107, 1057),  # 17 cents left is below EUR's 50-cent minimum: 50 charged, 33 kept
        (1107, 40, 40),
    ],
)
def test_credit_to_apply_never_leaves_an_unchargeable_rest(credit: int, total: int, applied: int) -> None:
    from pipelines.subscription.billing import credit_to_apply

    assert credit_to_apply(credit, total, "eur") == applied
