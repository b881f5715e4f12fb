"""Report periods and requests: labels, boundaries, and the errors that name the field."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.reports.generate import ReportRequestError, parse_spec
from engine.reports.periods import PeriodError, check_started, month, parse_period, quarter, quarter_of

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("label", "kind", "first", "last"),
    [("2026-Q4", "quarter", date(2026, 10, 1), date(2026, 12, 31)),
     ("2024-q1", "quarter", date(2024, 1, 1), date(2024, 3, 31)),
     ("2024-Q2", "quarter", date(2024, 4, 1), date(2024, 6, 30)),
     ("2024-02", "month", date(2024, 2, 1), date(2024, 2, 29)),
     ("2026-12", "month", date(2026, 12, 1), date(2026, 12, 31)),
     (" 2026-11-30 ", "day", date(2026, 11, 30), date(2026, 11, 30))],
)  # fmt: skip
def test_labels(label: str, kind: str, first: date, last: date) -> None:
    period = parse_period(label, ("quarter", "month", "day"))
    assert (period.kind, period.first, period.last) == (kind, first, last)


def test_boundaries_are_utc_midnights() -> None:
    q = quarter(2024, 2)
    assert q.start == datetime(2024, 4, 1, tzinfo=UTC) and q.end == datetime(2024, 7, 1, tzinfo=UTC)
    assert q.contains(datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC))
    assert not q.contains(datetime(2024, 7, 1, tzinfo=UTC))
    assert quarter_of(date(2024, 12, 31)) == quarter(2024, 4)
    assert month(2024, 12).last == date(2024, 12, 31)
    assert q.in_progress(date(2024, 6, 30)) and not q.in_progress(date(2024, 7, 1))


@pytest.mark.parametrize(
    ("label", "message"),
    [(None, "is required"), ("", "is required"), ("2026-Q5", "malformed"), ("2026Q4", "malformed"),
     ("2026-13", "no month 13"), ("2026-02-30", "not a date"), ("Q4-2026", "malformed"), ("1999-Q4", "before 2000"),
     (2026, "is required")],
)  # fmt: skip
def test_malformed_labels(label: object, message: str) -> None:
    with pytest.raises(PeriodError, match=message) as caught:
        parse_period(label, ("quarter", "month", "day"))
    assert (caught.value.param, caught.value.code) == ("period", "period_invalid")


def test_a_kind_the_report_does_not_take() -> None:
    with pytest.raises(PeriodError, match="is a month; this report takes a quarter like 2026-Q4"):
        parse_period("2026-11", ("quarter",))


def test_a_period_that_has_not_started() -> None:
    check_started(parse_period("2026-Q4", ("quarter",)), TODAY)  # in progress: fine
    with pytest.raises(PeriodError, match="2027-Q1 has not started") as caught:
        check_started(parse_period("2027-Q1", ("quarter",)), TODAY)
    assert caught.value.code == "period_not_started"


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"type": "vat", "period": "2026-Q3"}, "type", "report_type_unknown"),
        ({"type": None, "period": "2026-Q3"}, "type", "report_type_unknown"),
        ({"type": "oss_return", "period": "2026-11"}, "period", "period_invalid"),
        ({"type": "oss_return", "period": "2026-Q9"}, "period", "period_invalid"),
        ({"type": "oss_return"}, "period", "period_invalid"),
        ({"type": "oss_return", "period": "2027-Q1"}, "period", "period_not_started"),
        ({"type": "oss_return", "day": "2026-11-30"}, "date", "field_not_allowed"),
        ({"type": "oss_return", "period": "2026-Q3", "currency": "EUR"}, "currency", "field_not_allowed"),
        ({"type": "revenue", "period": "2026-11", "currency": "XXX"}, "currency", "currency_invalid"),
        ({"type": "revenue", "period": "2026-12-04"}, "period", "period_not_started"),
        ({"type": "settlement", "day": "2026-11-31"}, "date", "period_invalid"),
        ({"type": "settlement", "period": "2026-11-30"}, "period", "field_not_allowed"),
        ({"type": "settlement"}, "date", "period_invalid"),
    ],
)
def test_bad_requests_name_the_field(kwargs: dict[str, object], param: str, code: str) -> None:
    args = dict(kwargs)
    kind = args.pop("type")
    with pytest.raises(ReportRequestError) as caught:
        parse_spec(kind, today=TODAY, **args)  # type: ignore[arg-type]
    assert (caught.value.param, caught.value.code) == (param, code)


def test_good_requests() -> None:
    spec = parse_spec("oss_return", period="2026-Q4", today=TODAY)
    assert (spec.type, spec.period.label, spec.currency) == ("oss_return", "2026-Q4", None)
    spec = parse_spec("revenue", period="2026-11", currency="EUR", today=TODAY)
    assert spec.currency == "eur" and spec.to_json() == {"type": "revenue", "period": "2026-11", "currency": "eur"}
    spec = parse_spec("settlement", day="2026-11-30", today=TODAY)
    assert spec.to_json() == {"type": "settlement", "date": "2026-11-30", "currency": None}
