"""Keeping a DLQ message in the database before it is deleted from SQS (purge, or a replay of a settled job)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.tables import dead_letters
from engine.db.tables_dlq import dlq_archive
from engine.ops.dlq.entries import DlqEntry


def archive(conn: sa.Connection, entry: DlqEntry, action: str) -> None:
    """Insert the archive row for ``entry`` (idempotent: a second call for the same DLQ message does nothing) and
    mark its reason row purged (``action="purge"``) or replayed (``"settled"``).

    Runs in the caller's transaction; the caller deletes the SQS message only after it committed.
    Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database refuses.
    """
    m = entry.message
    conn.execute(
        insert(dlq_archive)
        .values(
            dlq=m.dlq_name,
            message_id=m.message_id,
            job_id=entry.job_id,
            kind=entry.kind,
            group_id=m.group_id,
            body=m.body,
            attributes=m.archived_attributes(),
            reason=_jsonable(entry.reason),
            action=action,
        )
        .on_conflict_do_nothing(constraint="dlq_archive_dlq_message_key")
    )
    if entry.reason and entry.reason.get("id") is not None:
        column = "purged_at" if action == "purge" else "replayed_at"
        conn.execute(
            dead_letters.update().where(dead_letters.c.id == entry.reason["id"]).values({column: sa.func.now()})
        )


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
