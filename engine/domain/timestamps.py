"""Times as the engine renders them: ISO 8601 in UTC with a ``Z`` (job objects, subscriptions, DLQ listings,
review records), e.g. ``2026-11-26T10:00:00.123456Z``.  ``docs/api.md`` ("Objects") documents the format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


@overload
def iso_utc(value: datetime) -> str: ...
@overload
def iso_utc(value: None) -> None: ...
def iso_utc(value: datetime | None) -> str | None:
    """``value`` as ISO 8601 in UTC ending in ``Z``; ``None`` stays ``None``.

    An aware time in another zone is converted to UTC; a naive one is taken to be UTC already (the engine keeps
    every time in UTC).
    """
    if value is None:
        return None
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")
