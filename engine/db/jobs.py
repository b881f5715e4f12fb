"""The jobs repository: rows of ``jobs`` in and out as :class:`engine.jobs.job.Job`."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from engine.db.tables import jobs
from engine.errors import NotFoundError, PaymentsError
from engine.jobs.job import TERMINAL, Job


class JobNotFound(NotFoundError):
    """No job has this id."""


class StaleCopy(PaymentsError):
    """A fenced write found the job moved on (another copy checkpointed it, or it reached a terminal status): this
    copy lost the race and must stop without writing anything else."""

    def __init__(self, job_id: str, expected_stage: str | None) -> None:
        super().__init__(f"job {job_id} is no longer at stage {expected_stage!r} and running: a stale copy")
        self.job_id = job_id
        self.expected_stage = expected_stage


class _Any:
    """The default of ``expected_stage``: no fencing (operator actions and webhooks, which lock the row)."""

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()


def _fenced(stmt: Any, expected_stage: Any) -> Any:
    """``stmt`` restricted to a running job still at ``expected_stage`` (unless ``expected_stage`` is :data:`ANY`;
    a tuple accepts any of its stages).

    The fence a worker's checkpoint needs: a visibility expiry or a replay can run two copies of a job at once,
    and the stale one must not rewind the recovery point or move a settled job back to ``processing``.
    """
    if expected_stage is ANY:
        return stmt
    stages = expected_stage if isinstance(expected_stage, tuple) else (expected_stage,)
    return stmt.where(
        sa.or_(*(jobs.c.stage.is_not_distinct_from(stage) for stage in stages)),
        jobs.c.status.not_in(sorted(TERMINAL)),
    )


def row_to_job(row: sa.RowMapping) -> Job:
    """A ``jobs`` row as a :class:`Job`."""
    return Job(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        stage=row["stage"],
        idempotency_scope=row["idempotency_scope"],
        queue=row["queue"],
        group_id=row["group_id"],
        request=row["request"],
        customer_id=row["customer_id"],
        correlation_id=row["correlation_id"],
        merchant_id=row["merchant_id"],
        created_by=row["created_by"],
        stage_results=row["stage_results"] or {},
        public=row["result"] or {},
        error=row["error"],
        attempts=row["attempts"],
        enqueue_generation=row["enqueue_generation"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def row_values(job: Job) -> dict[str, Any]:
    """The columns a new job row is inserted with (timestamps and counters take their defaults)."""
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "stage": job.stage,
        "idempotency_scope": job.idempotency_scope,
        "queue": job.queue,
        "group_id": job.group_id,
        "customer_id": job.customer_id,
        "correlation_id": job.correlation_id,
        "merchant_id": job.merchant_id,
        "created_by": job.created_by,
        "request": job.request,
        "stage_results": job.stage_results,
        "result": job.public or None,
        "error": job.error,
    }


def insert(conn: sa.Connection, job: Job) -> Job:
    """Insert ``job`` and return it with its timestamps.

    Raises :class:`sqlalchemy.exc.IntegrityError` when a job with the same id or idempotency scope exists.
    """
    row = conn.execute(jobs.insert().values(**row_values(job)).returning(jobs)).mappings().one()
    return row_to_job(row)


def get(conn: sa.Connection, job_id: str, *, for_update: bool = False, merchant: str | None = None) -> Job:
    """The job ``job_id`` (of ``merchant`` when given: another merchant's job is not found, as on Stripe, so ids
    cannot be probed).  Raises :class:`JobNotFound`."""
    query = sa.select(jobs).where(jobs.c.id == job_id)
    if merchant is not None:
        query = query.where(jobs.c.merchant_id == merchant)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    if row is None:
        raise JobNotFound(job_id)
    return row_to_job(row)


def get_by_scope(conn: sa.Connection, scope: str) -> Job | None:
    """The job of an idempotency scope, if any."""
    row = conn.execute(sa.select(jobs).where(jobs.c.idempotency_scope == scope)).mappings().one_or_none()
    return row_to_job(row) if row else None


def checkpoint(
    conn: sa.Connection,
    job_id: str,
    *,
    stage: str | None,
    stage_results: dict[str, Any],
    public: dict[str, Any] | None = None,
    status: str | None = None,
    error: dict[str, Any] | None = None,
    clear_error: bool = False,
    expected_stage: Any = ANY,
) -> None:
    """Record completed stages in one UPDATE: results merged, public fields merged, status/stage/error set.

    Called inside the caller's transaction so local writes of a stage (ledger, outbox) commit with it.  With
    ``expected_stage`` (a stage name or None) the UPDATE applies only while the job is at that stage and not
    terminal; raises :class:`StaleCopy` otherwise, and the caller's transaction must roll back.
    """
    values: dict[str, Any] = {
        "stage_results": jobs.c.stage_results.op("||")(sa.cast(stage_results, JSONB)),
        "updated_at": sa.func.now(),
    }
    if stage is not None:
        values["stage"] = stage
    if public:
        values["result"] = _merged_result(public)
    if status is not None:
        values["status"] = status
    if error is not None:
        values["error"] = error
    elif clear_error:
        values["error"] = None
    stmt = _fenced(jobs.update().where(jobs.c.id == job_id), expected_stage)
    if conn.execute(stmt.values(**values)).rowcount == 0 and expected_stage is not ANY:
        raise StaleCopy(job_id, expected_stage)


def merge_result(conn: sa.Connection, job_id: str, fields: dict[str, Any], *, touch: bool = False) -> None:
    """Merge ``fields`` into the job's API view (column ``result``) outside a checkpoint: what a stage's local
    write adds (its ledger transaction, its invoice) in the caller's transaction.  ``touch`` also sets
    ``updated_at``."""
    values: dict[str, Any] = {"result": _merged_result(fields)}
    if touch:
        values["updated_at"] = sa.func.now()
    conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))


def _merged_result(fields: dict[str, Any]) -> Any:
    """``result`` (an empty object when NULL) with ``fields`` merged over it, top-level keys replaced."""
    return sa.func.coalesce(jobs.c.result, sa.text("'{}'::jsonb")).op("||")(sa.cast(fields, JSONB))


def set_status(
    conn: sa.Connection,
    job_id: str,
    status: str,
    *,
    only_from: Sequence[str] | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """Set a job's status (optionally only when it is in one of ``only_from``); True when a row changed."""
    stmt = jobs.update().where(jobs.c.id == job_id).values(status=status, updated_at=sa.func.now())
    if only_from is not None:
        stmt = stmt.where(jobs.c.status.in_(list(only_from)))
    if error is not None:
        stmt = stmt.values(error=error)
    return conn.execute(stmt).rowcount > 0


def encode_cursor(created_at: datetime, job_id: str) -> str:
    """An opaque cursor for keyset pagination (newest first)."""
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`.  Raises :class:`ValueError` for a cursor this code did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        return datetime.fromisoformat(created), str(job_id)
    except Exception as exc:
        raise ValueError("invalid cursor") from exc


class AnchorNotFound(NotFoundError):
    """``starting_after`` / ``ending_before`` names no job."""


def page(
    conn: sa.Connection,
    *,
    limit: int = 20,
    cursor: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    customer: str | None = None,
    starting_after: str | None = None,
    ending_before: str | None = None,
    merchant: str | None = None,
) -> tuple[list[Job], bool, str | None]:
    """A page of jobs, newest first: ``(jobs, has_more, next_cursor)``; only ``merchant``'s when given (an anchor
    of another merchant is not found).

    Stripe-style: ``starting_after`` (a job id) gives the jobs just older than that job, ``ending_before`` those
    just newer; ``has_more`` says whether more lie further in the direction asked (older by default, newer with
    ``ending_before``).  ``cursor`` is the older opaque form of ``starting_after``.  Give at most one of the three.

    Raises :class:`ValueError` on a bad cursor or more than one anchor, :class:`AnchorNotFound` for an anchor id
    that names no job.
    """
    if sum(x is not None for x in (cursor, starting_after, ending_before)) > 1:
        raise ValueError("give at most one of cursor, starting_after and ending_before")
    key = sa.tuple_(jobs.c.created_at, jobs.c.id)
    query = sa.select(jobs).limit(limit + 1)
    if merchant is not None:
        query = query.where(jobs.c.merchant_id == merchant)
    if status:
        query = query.where(jobs.c.status == status)
    if kind:
        query = query.where(jobs.c.kind == kind)
    if customer:
        query = query.where(jobs.c.customer_id == customer)
    newer = ending_before is not None
    anchor: tuple[datetime, str] | None = decode_cursor(cursor) if cursor else None
    if starting_after is not None or ending_before is not None:
        anchor_id = str(starting_after if starting_after is not None else ending_before)
        anchor_query = sa.select(jobs.c.created_at, jobs.c.id).where(jobs.c.id == anchor_id)
        if merchant is not None:
            anchor_query = anchor_query.where(jobs.c.merchant_id == merchant)
        found = conn.execute(anchor_query).one_or_none()
        if found is None:
            raise AnchorNotFound(anchor_id)
        anchor = (found.created_at, found.id)
    if anchor is not None:
        bound = sa.tuple_(sa.literal(anchor[0]), sa.literal(anchor[1]))
        query = query.where(key > bound if newer else key < bound)
    if newer:
        # The jobs just newer than the anchor: nearest first, then turned back to newest first.
        query = query.order_by(jobs.c.created_at.asc(), jobs.c.id.asc())
    else:
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
    rows = [row_to_job(r) for r in conn.execute(query).mappings().all()]
    has_more = len(rows) > limit
    rows = rows[:limit]
    if newer:
        rows.reverse()
    last = rows[-1] if rows else None
    next_cursor = (
        encode_cursor(last.created_at, last.id) if has_more and not newer and last and last.created_at else None
    )
    return rows, has_more, next_cursor


def note(conn: sa.Connection, job_id: str, key: str, value: dict[str, Any], *, expected_stage: Any = ANY) -> None:
    """Keep ``value`` under ``stage_results[key]`` without moving the recovery point (failure-path notes).

    Fenced like :func:`checkpoint` when ``expected_stage`` is given: raises :class:`StaleCopy` when the job moved
    on, so a stale copy never overwrites the progress of the copy that won.
    """
    stmt = _fenced(jobs.update().where(jobs.c.id == job_id), expected_stage)
    changed = conn.execute(
        stmt.values(
            stage_results=jobs.c.stage_results.op("||")(sa.func.jsonb_build_object(key, sa.cast(value, JSONB))),
            attempts=jobs.c.attempts + 1,
            updated_at=sa.func.now(),
        )
    ).rowcount
    if changed == 0 and expected_stage is not ANY:
        raise StaleCopy(job_id, expected_stage)


def insert_if_absent(conn: sa.Connection, job: Job) -> Job:
    """Insert ``job`` unless its idempotency scope (or id) is taken; return the stored job either way."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    conn.execute(pg_insert(jobs).values(**row_values(job)).on_conflict_do_nothing())
    found = get_by_scope(conn, job.idempotency_scope)
    if found is None:
        return get(conn, job.id)
    return found


def cross_border_b2c_eur_cents(conn: sa.Connection, seller_country: str) -> int:
    """The seller's cross-border EU B2C sales this and last calendar year, in euro cents (the OSS threshold).

    Counts succeeded EUR payments to consumers in another state than ``seller_country``; other currencies would
    need a rate of exchange (documented limitation).
    """
    query = sa.text(
        """
        SELECT coalesce(sum((result->'amounts'->>'total')::bigint), 0) FROM jobs
        WHERE kind = 'payment' AND status = 'succeeded'
          AND result->'amounts'->>'currency' = 'eur'
          AND request->'customer'->>'country' <> :seller
          AND coalesce(request->'customer'->>'type', 'consumer') = 'consumer'
          AND created_at >= date_trunc('year', now()) - interval '1 year'
        """
    )
    return int(conn.execute(query, {"seller": seller_country}).scalar_one())
