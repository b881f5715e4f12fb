"""The reconciler: jobs left ``accepted``/``processing`` without progress are sent again.

"Accepted means durable" promises that every accepted job reaches a terminal status.  A message can still vanish
outside the engine's control — an operator purged a queue, the embedded in-memory SQS endpoint restarted, a
dispatch row the outbox relay could not send.  The scheduler runs :func:`reconcile` periodically: every job
``accepted`` or ``processing`` whose ``updated_at`` is older than ``PAYMENTS_RECONCILE_AFTER_SECONDS`` (default
900) gets its message re-sent with deduplication suffix ``:reconcile:N`` (N = its next enqueue generation).

No message in flight: SQS cannot say which job an in-flight message belongs to, so the rule is time.  Every
moment a message legitimately spends on a job — a stage's run (checkpointed as it goes), a retry backoff
(``PAYMENTS_RETRY_BACKOFF_MAX_SECONDS``, 300 s), a circuit-breaker wait (2 min) — is far below the 15-minute
default, and a job whose message sits in a DLQ is ``dead_lettered`` (terminal, ignored) once the worker or the DLQ
sweep, which the scheduler runs first, recorded it.  A copy sent while the original is in fact still queued is
harmless: it is in the same FIFO message group, so it runs after the original, finds the job settled and does
nothing; and ``updated_at`` is touched when a job is re-sent, so a job waiting in a deep backlog gets at most one
extra message per threshold.  Terminal jobs are never touched.

Claiming is atomic (``FOR UPDATE SKIP LOCKED`` and the send inside the transaction), so two schedulers never send
the same job twice in one round, and a send SQS refuses leaves the job as it was for the next round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.tables import jobs
from engine.jobs.resend import send_again
from engine.runtime.container import Container

log = logging.getLogger(__name__)

#: Jobs handled per round (the rest wait for the next round, a minute later).
BATCH_LIMIT = 500
STALE_STATUSES = ("accepted", "processing")


@dataclass(frozen=True)
class ReconcileReport:
    """What one round did: the jobs re-sent (id → dedup suffix) and those whose send failed."""

    requeued: dict[str, str]
    failed: dict[str, str]
    after_seconds: int

    def line(self) -> str:
        """The scheduler's one-line report."""
        text = f"{len(self.requeued)} job(s) without progress for {self.after_seconds}s re-enqueued"
        if self.requeued:
            shown = sorted(self.requeued)[:10]
            text += ": " + ", ".join(shown) + (" …" if len(self.requeued) > len(shown) else "")
        if self.failed:
            text += f"; {len(self.failed)} could not be sent (retried next round)"
        return text


def reconcile(c: Container, *, after_seconds: int | None = None, limit: int = BATCH_LIMIT) -> ReconcileReport:
    """Re-send every stale non-terminal job (see the module docstring) and report.

    Time is the database's (``now()``, the clock ``updated_at`` is written with), never the scheduler's ``--now``:
    the reconciler always runs on real time.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database is down (SQS refusing one job's send is reported, not raised).
    """
    threshold = after_seconds if after_seconds is not None else c.settings.reconcile.after_seconds
    cutoff = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, threshold)
    with c.db.connect() as conn:
        ids = list(
            conn.execute(
                sa.select(jobs.c.id)
                .where(jobs.c.status.in_(STALE_STATUSES), jobs.c.updated_at < cutoff)
                .order_by(jobs.c.updated_at)
                .limit(limit)
            ).scalars()
        )
    requeued: dict[str, str] = {}
    failed: dict[str, str] = {}
    for job_id in ids:
        try:
            suffix = _requeue_one(c, job_id, cutoff)
        except Exception as exc:  # one job's failed send must not stop the round; it stays stale for the next
            log.warning("reconciler could not re-enqueue job %s: %s", job_id, exc, extra={"job_id": job_id})
            failed[job_id] = f"{type(exc).__name__}: {exc}"
            continue
        if suffix is not None:
            requeued[job_id] = suffix
            log.info("reconciler re-enqueued job %s (%s)", job_id, suffix, extra={"job_id": job_id})
    return ReconcileReport(requeued, failed, threshold)


def _requeue_one(c: Container, job_id: str, cutoff: Any) -> str | None:
    """Claim one job if still stale, bump its generation, touch it and send it, in one transaction.  The suffix
    used, or ``None`` when the job moved on (or another scheduler holds it)."""
    with c.db.begin() as conn:
        row = (
            conn.execute(
                sa.select(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(STALE_STATUSES), jobs.c.updated_at < cutoff)
                .with_for_update(skip_locked=True)
            )
            .mappings()
            .one_or_none()
        )
        if row is None:
            return None
        job = job_repo.row_to_job(row)
        generation = job.enqueue_generation + 1
        conn.execute(
            jobs.update().where(jobs.c.id == job.id).values(enqueue_generation=generation, updated_at=sa.func.now())
        )
        suffix = f":reconcile:{generation}"
        # Inside the transaction: if SQS refuses, the generation and updated_at roll back (retried next round).
        send_again(c.broker, job, suffix)
        return suffix


def run_task(container: Container, now: datetime) -> str:
    """The scheduler task (``engine.ops.scheduler.ENGINE_TASKS``): one round, reported in one line.  ``now`` is
    ignored: the reconciler runs on real time, whatever ``payments scheduler --once --now`` says."""
    return reconcile(container).line()
