"""Holding refunds whose payment has not settled yet, and releasing them when it does.

A refund cannot be decided before its payment is captured, and a refund job retried through SQS would burn its
receives (three, then the dead-letter queue) while a payment waits for 3-D Secure or a review.  So the refund runner
checks first, under the payment's row lock: when the payment is neither ``succeeded`` nor ``failed`` the refund is
recorded ``held`` in ``refunds`` and its message is acknowledged.  The payment's runner (:class:`ReleasingRunner`)
releases the payment's held refunds right after the payment settles, by sending their messages again; the
scheduler's janitor (:func:`sweep_held`) covers a worker that died in between and payments settled outside a
runner (a review decline).

The lock makes the two sides meet: the hold is written while holding the payment row, and the payment's final
status is an UPDATE of that row, so either the hold sees the settled payment or the release sees the hold.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from engine.db import jobs as job_repo
from engine.db.tables import jobs
from engine.db.tables_refunds import refunds
from engine.jobs.job import FINAL, SETTLED, Job
from engine.jobs.pipeline import Pipeline, PipelineRunner, StageTimer
from engine.jobs.resend import send_again
from pipelines.refund.request import REFUNDABLE_KINDS, target_job_id

log = logging.getLogger(__name__)


def hold_if_waiting(db: sa.Engine, refund_job_id: str) -> Job | None:
    """Hold the refund ``refund_job_id`` if its payment has not settled; return the held job, else None.

    None means "go on": the refund already started its stages, is settled, or its payment is settled (or missing,
    which the amount stage turns into a failure).  Raises :class:`engine.db.jobs.JobNotFound` for an unknown refund.
    """
    with db.begin() as conn:
        job = job_repo.get(conn, refund_job_id)
        if job.status in SETTLED or job.stage is not None:
            return None
        payment_id = target_job_id(conn, job.request)
        try:
            payment = job_repo.get(conn, str(payment_id), for_update=True)
        except job_repo.JobNotFound:
            return None
        if payment.kind not in REFUNDABLE_KINDS or payment.status in FINAL:
            return None
        conn.execute(
            pg_insert(refunds)
            .values(id=job.id, payment_job_id=payment.id, source="engine", status="held")
            .on_conflict_do_update(
                index_elements=[refunds.c.id],
                set_={"status": "held", "updated_at": sa.func.now()},
                where=refunds.c.status.in_(("held", "released")),
            )
        )
        job_repo.checkpoint(
            conn,
            job.id,
            stage=None,
            stage_results={},
            public={"held": {"reason": "payment_not_settled", "payment_status": payment.status}},
            status="processing",
        )
        log.info("refund %s held until payment %s settles", job.id, payment.id, extra={"job_id": job.id})
        return job_repo.get(conn, job.id)


def release_held(db: sa.Engine, broker: Any, payment_job_id: str) -> int:
    """Send the messages of the refunds held for ``payment_job_id`` again; how many were released.

    The rows are marked ``released`` and the messages sent in one transaction: if SQS refuses, the holds stay
    for the janitor.  Raises what SQS or the database raise.
    """
    # Almost every payment has no held refund: a read (no commit) settles that before any write transaction.
    with db.connect() as conn:
        any_held = conn.execute(
            sa.select(refunds.c.id)
            .where(refunds.c.payment_job_id == payment_job_id, refunds.c.status == "held")
            .limit(1)
        ).first()
    if any_held is None:
        return 0
    with db.begin() as conn:
        released = (
            conn.execute(
                refunds.update()
                .where(refunds.c.payment_job_id == payment_job_id, refunds.c.status == "held")
                .values(status="released", updated_at=sa.func.now())
                .returning(refunds.c.id)
            )
            .scalars()
            .all()
        )
        for refund_id in released:
            job = job_repo.get(conn, refund_id, for_update=True)
            generation = job.enqueue_generation + 1
            conn.execute(jobs.update().where(jobs.c.id == job.id).values(enqueue_generation=generation))
            send_again(broker, job, f":reconcile:{generation}")
    if released:
        log.info("released %d refund(s) held for payment %s", len(released), payment_job_id)
    return len(released)


def sweep_held(db: sa.Engine, broker: Any, limit: int = 100) -> int:
    """Release refunds held for payments that have settled since (a worker died before releasing, or the payment
    settled outside a runner).  Returns how many refunds were released."""
    query = (
        sa.select(refunds.c.payment_job_id)
        .join(jobs, jobs.c.id == refunds.c.payment_job_id)
        .where(refunds.c.status == "held", jobs.c.status.in_(sorted(FINAL)))
        .distinct()
        .limit(limit)
    )
    with db.connect() as conn:
        payments = conn.execute(query).scalars().all()
    return sum(release_held(db, broker, p) for p in payments)


class RefundRunner(PipelineRunner):
    """The refund pipeline's runner: holds a refund whose payment has not settled instead of running it."""

    def __init__(self, db: sa.Engine, pipeline: Pipeline, on_stage: StageTimer | None = None) -> None:
        super().__init__(db, pipeline, on_stage)
        self._engine = db

    def run(self, job_id: str) -> Job:
        """Hold the refund (message acknowledged, job ``processing``) or run its remaining stages."""
        held = hold_if_waiting(self._engine, job_id)
        if held is not None:
            return held
        return super().run(job_id)


class ReleasingRunner(PipelineRunner):
    """The runner of the pipelines that charge (payment, subscription): once a job settles, the refunds held for
    its charge are released at once."""

    def __init__(self, db: sa.Engine, pipeline: Pipeline, broker: Any, on_stage: StageTimer | None = None) -> None:
        super().__init__(db, pipeline, on_stage)
        self._broker = broker

    def run(self, job_id: str) -> Job:
        """Run the payment; when it is settled, release its held refunds (a failure to release is left to the
        janitor: the payment itself is done and must not be retried for it)."""
        job = super().run(job_id)
        if job.status in FINAL:
            try:
                release_held(self._db, self._broker, job.id)
            except Exception:
                log.warning("could not release refunds held for %s; the janitor will", job.id, exc_info=True)
        return job
