"""Resolving jobs parked ``in_review`` by the fraud stage: approve (the pipeline resumes after ``fraud``) or
decline (the job fails ``review_declined``).  Used by ``POST /v1/jobs/{id}/review`` and ``payments review``."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.outbox import add_event
from engine.db.tables import jobs
from engine.domain.timestamps import iso_utc
from engine.errors import PaymentsError
from engine.jobs.job import Job
from engine.jobs.resend import send_again
from engine.runtime.container import Container


class NotInReview(PaymentsError):
    """The job is not waiting for a review decision (already decided, or never parked)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.status}, not in_review")
        self.job = job


def in_review(c: Container, limit: int = 100) -> list[Job]:
    """Jobs waiting for a decision, oldest first."""
    with c.db.connect() as conn:
        rows = conn.execute(
            sa.select(jobs).where(jobs.c.status == "in_review").order_by(jobs.c.updated_at).limit(limit)
        ).mappings()
        return [job_repo.row_to_job(r) for r in rows]


def decide(c: Container, job_id: str, decision: str, reviewer: str) -> Job:
    """Apply a review decision and return the job.

    ``approve`` sets the job ``processing`` and re-sends its message (dedup suffix ``:review:N``) so the pipeline
    resumes after the fraud stage; ``decline`` fails it and announces ``job.failed``.

    Raises :class:`engine.db.jobs.JobNotFound`, :class:`NotInReview`, :class:`ValueError` for another decision.
    """
    if decision not in ("approve", "decline"):
        raise ValueError("decision must be approve or decline")
    review = {"decision": decision, "by": reviewer, "at": iso_utc(datetime.now(UTC))}
    with c.db.begin() as conn:
        job = job_repo.get(conn, job_id, for_update=True)
        if job.status != "in_review":
            raise NotInReview(job)
        if decision == "decline":
            error = {"code": "review_declined", "message": f"Declined in review by {reviewer}."}
            job_repo.checkpoint(
                conn, job.id, stage=None, stage_results={}, public={"review": review}, status="failed", error=error
            )
            view = job_repo.get(conn, job.id).view()
            add_event(conn, job_id=job.id, event_type="job.failed", event_key=f"{job.id}:job.failed", payload=view)
            return job_repo.get(conn, job.id)
        generation = job.enqueue_generation + 1
        job_repo.checkpoint(
            conn, job.id, stage=None, stage_results={}, public={"review": review}, status="processing", clear_error=True
        )
        conn.execute(jobs.update().where(jobs.c.id == job.id).values(enqueue_generation=generation))
        send_again(c.broker, job, f":review:{generation}")
        return job_repo.get(conn, job.id)
