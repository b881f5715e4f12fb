"""The outbox: events written in the same transaction as the state change they announce, relayed later.

Each event has a unique ``event_key`` (``{job_id}:job.{status}``), so a redone stage never announces twice.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.tables import outbox


def add_event(
    conn: sa.Connection, *, job_id: str | None, event_type: str, event_key: str, payload: dict[str, Any]
) -> bool:
    """Write an event in the caller's transaction; False when an event with this key exists already."""
    result = conn.execute(
        insert(outbox)
        .values(job_id=job_id, event_type=event_type, event_key=event_key, payload=payload)
        .on_conflict_do_nothing(index_elements=["event_key"])
        .returning(outbox.c.id)
    )
    return result.first() is not None


def claim_unrelayed(conn: sa.Connection, limit: int = 100) -> list[sa.RowMapping]:
    """Lock up to ``limit`` unrelayed events (oldest first) for this transaction; other relays skip them."""
    query = (
        sa.select(outbox)
        .where(outbox.c.relayed_at.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(conn.execute(query).mappings().all())


def mark_relayed(conn: sa.Connection, ids: list[int]) -> None:
    if ids:
        conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(relayed_at=sa.func.now()))
