"""Appending to the audit chain, in the caller's transaction, and reading it back in order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.audit.record import AuditRecord, make_body
from engine.db.tables_audit import audit_head, audit_records
from engine.domain.timestamps import iso_utc

_APPEND = sa.text("SELECT audit_append(:body)")
_ENQUEUE = sa.text("SELECT audit_enqueue(:body)")
_SEAL = sa.text("SELECT audit_seal(:n)")
SEAL_BATCH = 5000


def append(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    job: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Append one record in ``conn``'s transaction and return its sequence number.

    One statement: the database chains the record under the head row's lock, which is held until the caller's
    COMMIT, so call this as the transaction's last statement (the lock then covers only the commit).  If the
    transaction rolls back, the record goes with it and the sequence stays gapless.

    Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database refuses, :class:`TypeError`/:class:`ValueError`
    when ``detail`` is not JSON.
    """
    body = make_body(at=iso_utc(at or datetime.now(UTC)), actor=actor, action=action, job=job, detail=detail)
    return int(conn.execute(_APPEND, {"body": body}).scalar_one())


def enqueue(
    conn: sa.Connection,
    *,
    actor: str,
    action: str,
    job: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Queue one record in ``conn``'s transaction for :func:`seal` to chain; its queue id.

    For the hot paths (the ingest): an INSERT into ``audit_pending``, no lock, so concurrent requests' commits are
    not serialised.  The record is durable with the change it records and rolls back with it; it gets its place in
    the chain when sealed (the scheduler's ``audit-seal`` task, every few seconds, and before shipping, listing or
    verifying).  Raises as :func:`append`.
    """
    body = make_body(at=iso_utc(at or datetime.now(UTC)), actor=actor, action=action, job=job, detail=detail)
    return int(conn.execute(_ENQUEUE, {"body": body}).scalar_one())


def seal(db: sa.Engine, batch: int = SEAL_BATCH) -> int:
    """Chain every committed queued record, oldest first, in transactions of at most ``batch``; how many.

    Safe to run concurrently (the head's row lock serialises sealers; each record is chained once).
    Raises :class:`sqlalchemy.exc.SQLAlchemyError`.
    """
    total = 0
    while True:
        with db.begin() as conn:
            n = int(conn.execute(_SEAL, {"n": batch}).scalar_one())
        total += n
        if n < batch:
            return total


def seal_task(db: sa.Engine, now: datetime) -> str:
    """The scheduler's ``audit-seal`` task."""
    return f"{seal(db)} queued record(s) chained"


def records(conn: sa.Connection, *, since_seq: int = 1, batch: int = 5000) -> Iterator[AuditRecord]:
    """Every record from ``since_seq`` on, in sequence order, read in batches (keyset, no long cursor)."""
    after = since_seq - 1
    while True:
        rows = conn.execute(
            sa.select(audit_records.c.seq, audit_records.c.prev_hash, audit_records.c.hash, audit_records.c.body)
            .where(audit_records.c.seq > after)
            .order_by(audit_records.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield AuditRecord(int(r.seq), str(r.prev_hash), str(r.hash), str(r.body))
        after = int(rows[-1].seq)


def head(conn: sa.Connection) -> tuple[int, str]:
    """The chain's head as the database keeps it: the last sequence number and its hash."""
    row = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    return int(row.seq), str(row.hash)


def for_job(conn: sa.Connection, job_id: str) -> list[AuditRecord]:
    """The records about ``job_id``, oldest first."""
    rows = conn.execute(
        sa.select(audit_records.c.seq, audit_records.c.prev_hash, audit_records.c.hash, audit_records.c.body)
        .where(audit_records.c.job_id == job_id)
        .order_by(audit_records.c.seq)
    ).all()
    return [AuditRecord(int(r.seq), str(r.prev_hash), str(r.hash), str(r.body)) for r in rows]


def first_seq_at(conn: sa.Connection, since: datetime) -> int | None:
    """The first record appended at or after ``since`` (by its body's time), or ``None``."""
    value = conn.execute(
        sa.text("SELECT min(seq) FROM audit_records WHERE (body::jsonb ->> 'at')::timestamptz >= :since"),
        {"since": since},
    ).scalar_one()
    return int(value) if value is not None else None
