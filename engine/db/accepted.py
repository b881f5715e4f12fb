"""The rows of one accepted job, written on the ingest's request path in two statements of the caller's transaction.

The job row first (its timestamps come back for the saved answer), then in one statement the saved answer under
the client's Idempotency-Key, the job's dispatch row in the outbox (``engine/db/outbox.py``) and its audit record
queued (``audit_enqueue``, ``engine/audit/chain.py``).  Each statement is fixed SQL text run with
``exec_driver_sql``: no SQLAlchemy expression is built, compiled or cache-keyed per request (that was most of the
ingest's CPU per request), and psycopg prepares both statements on each pooled connection after a few uses.

What they write is what :func:`engine.db.jobs.row_values`, :meth:`engine.ingest.idempotency.IdempotencyStore.save`,
:func:`engine.db.outbox.add_dispatches` and :func:`engine.audit.chain.enqueue` write; the batch path and every
other caller keep using those.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from engine.db.outbox import DISPATCH
from engine.jobs.job import Job

_INSERT_JOB = """
INSERT INTO jobs (id, kind, status, stage, idempotency_scope, queue, group_id, customer_id, correlation_id,
                  merchant_id, created_by, request, stage_results, result, error)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING attempts, enqueue_generation, created_at, updated_at
"""

# The key's row replaces an expired one (after its TTL a key may be used afresh, as on Stripe) and never a live one:
# then nothing is returned, and nothing else is written either (the outbox and audit rows hang on ``saved``).
_RECORD = f"""
WITH saved AS (
    INSERT INTO idempotency_keys (client, key, request_hash, job_id, response_status, response_body, expires_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (client, key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id,
            response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body,
            expires_at = EXCLUDED.expires_at, created_at = now()
        WHERE idempotency_keys.expires_at <= now()
    RETURNING key
), dispatched AS (
    INSERT INTO outbox (job_id, event_type, event_key, payload)
    SELECT NULL, '{DISPATCH}', %s, %s FROM saved
    ON CONFLICT (event_key) DO NOTHING
)
SELECT audit_enqueue(%s) FROM saved
"""


def insert_job(conn: sa.Connection, draft: Job) -> Job | None:
    """``draft`` inserted (with its counters and timestamps as stored), or ``None`` when its id or idempotency
    scope already has a job (nothing is written).  Raises :class:`sqlalchemy.exc.SQLAlchemyError`."""
    row = conn.exec_driver_sql(
        _INSERT_JOB,
        (
            draft.id,
            draft.kind,
            draft.status,
            draft.stage,
            draft.idempotency_scope,
            draft.queue,
            draft.group_id,
            draft.customer_id,
            draft.correlation_id,
            draft.merchant_id,
            draft.created_by,
            Jsonb(draft.request),
            Jsonb(draft.stage_results),
            Jsonb(draft.public) if draft.public else None,
            Jsonb(draft.error) if draft.error is not None else None,
        ),
    ).first()
    if row is None:
        return None
    attempts, generation, created_at, updated_at = row
    return replace(
        draft, attempts=attempts, enqueue_generation=generation, created_at=created_at, updated_at=updated_at
    )


def record_acceptance(
    conn: sa.Connection,
    *,
    client: str,
    key: str,
    request_hash: str,
    job_id: str,
    status: int,
    body: dict[str, Any],
    expires_at: datetime,
    queue: str,
    envelope: dict[str, Any],
    audit_body: str,
) -> bool:
    """Save the answer under (``client``, ``key``), the job's dispatch row and its audit record; False (nothing
    written) when the key has a live saved answer already.  Raises :class:`sqlalchemy.exc.SQLAlchemyError`."""
    row = conn.exec_driver_sql(
        _RECORD,
        (
            client,
            key,
            request_hash,
            job_id,
            status,
            Jsonb(body),
            expires_at,
            f"dispatch:{job_id}",
            Jsonb({"queue": queue, "envelope": envelope}),
            audit_body,
        ),
    ).first()
    return row is not None
