"""The PostgreSQL dead-letter sink: one reason row per dead-lettered message, and the job marked.

SQS redrive carries no reason, so the worker records why a message died at the moment it gives up on it.

``stage`` is the stage the error came from (the pipeline runner names it on the exception); when the error names
none (the DLQ sweep's ``WorkerLost``, poison), the job's recovery point (``jobs.stage``) is recorded instead.  For
poison whose body still names a job, the job id and kind are read from the body.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.broker.dead_letters import DeadLetterRecord
from engine.broker.envelope import job_fields
from engine.db.tables import dead_letters, jobs
from engine.jobs.job import SETTLED


class SqlDeadLetterSink:
    """Implements :class:`engine.broker.dead_letters.DeadLetterSink` on the ``dead_letters`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def record(self, record: DeadLetterRecord) -> None:
        """Upsert the reason row for (queue, message id) and mark its job ``dead_lettered``.

        A second record for the same message (a retried write, or the DLQ sweep finding it again) keeps the
        first failure time and takes the newest error.  A job already succeeded or failed is left alone.
        Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be written.
        """
        job_id, kind = record.job_id, record.kind
        if job_id is None:
            named = job_fields(record.body)
            job_id, kind = named.get("job_id"), kind or named.get("kind")
        values: dict[str, Any] = {
            "queue": record.queue,
            "message_id": record.message_id,
            "job_id": job_id,
            "kind": kind,
            "group_id": record.group_id,
            "stage": record.stage,
            "attempts": record.attempts,
            "error_class": record.error_class,
            "error_message": record.error_message,
            "traceback": record.traceback,
            "body": record.body,
            "source": record.source,
            "first_failed_at": record.failed_at,
            "last_failed_at": record.failed_at,
        }
        with self._engine.begin() as conn:
            if values["stage"] is None and job_id:
                # The stage reached: the job's last completed stage (its recovery point) when it died.
                values["stage"] = conn.execute(sa.select(jobs.c.stage).where(jobs.c.id == job_id)).scalar()
            conn.execute(_upsert(values))
            if job_id:
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id)
                    .where(jobs.c.status.not_in(sorted(SETTLED)))
                    .values(
                        status="dead_lettered",
                        error={
                            "code": "dead_lettered",
                            "message": f"{record.error_class}: {record.error_message}",
                        },
                        updated_at=sa.func.now(),
                    )
                )


def _upsert(values: dict[str, Any]) -> Any:
    """INSERT the reason row; on a second record for the same message keep the first failure time and take the
    newest error."""
    stmt = insert(dead_letters).values(**values)
    return stmt.on_conflict_do_update(
        constraint="dead_letters_queue_message_key",
        set_={
            "attempts": sa.func.greatest(dead_letters.c.attempts, stmt.excluded.attempts),
            "error_class": stmt.excluded.error_class,
            "error_message": stmt.excluded.error_message,
            "traceback": sa.func.coalesce(stmt.excluded.traceback, dead_letters.c.traceback),
            "last_failed_at": stmt.excluded.last_failed_at,
            "stage": sa.func.coalesce(stmt.excluded.stage, dead_letters.c.stage),
        },
    )
