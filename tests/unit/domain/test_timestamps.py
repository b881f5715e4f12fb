"""Times render as ISO 8601 in UTC with ``Z``, whatever zone they arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from engine.domain.timestamps import iso_utc


def test_utc_ends_in_z() -> None:
    assert iso_utc(datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)) == "2026-11-26T10:00:00.123456Z"


def test_another_zone_is_converted_and_naive_is_taken_as_utc() -> None:
    dublin_summer = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2026, 6, 1, 12, tzinfo=dublin_summer)) == "2026-06-01T11:00:00Z"
    assert iso_utc(datetime(2026, 6, 1, 12)) == "2026-06-01T12:00:00Z"


def test_none_stays_none() -> None:
    assert iso_utc(None) is None
