"""The outbox: rows written in the same transaction as the state change they announce, relayed to SQS later.

Two sorts of rows share the table and the relay (``engine/ops/outbox_relay.py``):

* **events** for the ``notifications`` queue (``job.succeeded``, ``subscription.renewed``, …).  Each has a unique
  ``event_key`` (``{job_id}:job.{status}``), so a redone stage never announces twice.
* **dispatches** (``event_type`` :data:`DISPATCH`): the message of a job the ingest accepted, written in the commit
  that records the job and its saved 202, so that a committed job always reaches its work queue even when the
  request's process dies or SQS is down right after the commit.  The payload holds the queue and the validated
  envelope; the ``event_key`` is ``dispatch:{job_id}``.  ``job_id`` stays NULL on these rows (the envelope names
  the job), so a job's own rows are exactly the events it announced.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.tables import outbox

#: ``event_type`` of a row that carries a job's work-queue message rather than a notification.
DISPATCH = "engine.dispatch"


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


def add_dispatches(conn: sa.Connection, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Write the work-queue messages of new jobs in the caller's transaction, one statement for all.

    ``items`` are ``(job_id, queue base name, envelope as a JSON dict)``.  A job already dispatched keeps its row.
    """
    if not items:
        return
    conn.execute(
        insert(outbox)
        .values(
            [
                {
                    "job_id": None,
                    "event_type": DISPATCH,
                    "event_key": f"dispatch:{job_id}",
                    "payload": {"queue": queue, "envelope": envelope},
                }
                for job_id, queue, envelope in items
            ]
        )
        .on_conflict_do_nothing(index_elements=["event_key"])
    )


def claim_unrelayed(conn: sa.Connection, limit: int = 100) -> list[sa.RowMapping]:
    """Lock up to ``limit`` unrelayed rows (oldest first) for this transaction; other relays skip them."""
    query = (
        sa.select(outbox)
        .where(outbox.c.relayed_at.is_(None))
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(conn.execute(query).mappings().all())


def mark_relayed(conn: sa.Connection, ids: list[int]) -> None:
    """Mark rows relayed (in the transaction that claimed them, after SQS took their messages)."""
    if ids:
        conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(relayed_at=sa.func.now()))


def unrelayed_count(conn: sa.Connection) -> int:
    """How many rows wait for the relay (health and tests)."""
    return int(conn.execute(sa.select(sa.func.count()).where(outbox.c.relayed_at.is_(None))).scalar_one())


def purge_relayed(conn: sa.Connection, older_than_days: int) -> int:
    """Delete rows relayed more than ``older_than_days`` days ago; returns how many.

    Safe because what an old row guards is settled by then: an event's job is terminal (a late stale copy is fenced
    off before it could announce again) and a dispatched job's Idempotency-Key answer has expired or names the job.
    Unrelayed rows are never deleted, whatever their age.
    """
    cutoff = sa.func.now() - sa.func.make_interval(0, 0, 0, older_than_days)
    return conn.execute(outbox.delete().where(outbox.c.relayed_at < cutoff)).rowcount
