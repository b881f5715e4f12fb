"""Resolving jobs parked ``in_review`` by the fraud stage: approve (the pipeline resumes after ``fraud``) or
decline (the job fails ``review_declined``).  Used by ``POST /v1/jobs/{id}/review`` and ``payments review``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
import stripe

from engine.audit import hooks as audit
from engine.db import jobs as job_repo
from engine.db.outbox import add_event
from engine.db.tables import jobs
from engine.domain.timestamps import iso_utc
from engine.errors import PaymentsError, TransientError
from engine.jobs.job import Job
from engine.jobs.resend import send_again
from engine.runtime import metrics
from engine.runtime.container import Container

log = logging.getLogger(__name__)

#: PaymentIntent statuses in which money was taken or may still be.
LIVE_INTENT = frozenset({"succeeded", "processing", "requires_capture"})


class NotInReview(PaymentsError):
    """The job is not waiting for a review decision (already decided, or never parked)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.status}, not in_review")
        self.job = job


class ChargedAtStripe(NotInReview):
    """A decline refused: Stripe holds a live PaymentIntent for the job (a charge made before a crash), which a
    ``failed`` job would leave captured and unbooked.  An incident for an operator."""

    def __init__(self, job: Job, intent_ids: list[str]) -> None:
        PaymentsError.__init__(
            self,
            f"job {job.id} cannot be declined: Stripe holds a live PaymentIntent for it ({', '.join(intent_ids)}); "
            "approve it (the charge is booked, not repeated) or refund it at Stripe first",
        )
        self.job = job
        self.intent_ids = intent_ids


def live_intents(c: Container, job: Job) -> list[str]:
    """The ids of the job's PaymentIntents at Stripe in which money was taken or may still be, found by
    ``metadata.job_id``.  Empty when Stripe is not configured.  Raises :class:`TransientError` when Stripe cannot
    be asked.

    When the job's Stripe customer is known (the charge made it; it is remembered in Redis), every page of that
    customer's intents is read first: Stripe's search is eventually consistent and can miss a charge made seconds
    before the crash that left the job in review.  The search covers the rest.
    """
    gateway = c.stripe_or_none
    if gateway is None:
        return []
    engine_customer = (job.request.get("customer") or {}).get("id")
    customer = gateway.known_customer(engine_customer, job.merchant_id) if engine_customer else None
    try:
        found = gateway.intents_for_job(job.id, customer)
    except stripe.StripeError as exc:
        raise TransientError(f"could not look job {job.id} up at Stripe: {exc}") from exc
    return sorted(pi.id for pi in found if pi.status in LIVE_INTENT)


def in_review(c: Container, limit: int = 100, merchant: str | None = None) -> list[Job]:
    """Jobs waiting for a decision, oldest first (only ``merchant``'s when given; every merchant's for the CLI)."""
    query = sa.select(jobs).where(jobs.c.status == "in_review").order_by(jobs.c.updated_at).limit(limit)
    if merchant is not None:
        query = query.where(jobs.c.merchant_id == merchant)
    with c.db.connect() as conn:
        rows = conn.execute(query).mappings()
        return [job_repo.row_to_job(r) for r in rows]


def decide(c: Container, job_id: str, decision: str, reviewer: str, merchant: str | None = None) -> Job:
    """Apply a review decision and return the job (a job of ``merchant`` when given: the API's caller may decide
    only its own merchant's jobs; the CLI, on call, any).

    ``approve`` sets the job ``processing`` and re-sends its message (dedup suffix ``:review:N``) so the pipeline
    resumes after the fraud stage; ``decline`` fails it and announces ``job.failed``.

    A decline looks the job up at Stripe first and refuses (:class:`ChargedAtStripe`) when a live PaymentIntent
    exists for it.

    Raises :class:`engine.db.jobs.JobNotFound`, :class:`NotInReview` (and :class:`ChargedAtStripe`),
    :class:`engine.errors.TransientError` when Stripe cannot be asked, :class:`ValueError` for another decision.
    """
    if decision not in ("approve", "decline"):
        raise ValueError("decision must be approve or decline")
    review = {"decision": decision, "by": reviewer, "at": iso_utc(datetime.now(UTC))}
    if decision == "decline":
        # Look Stripe up first (outside the row lock): a charge made before a crash must not end in a failed job.
        with c.db.connect() as conn:
            parked = job_repo.get(conn, job_id, merchant=merchant)
        if parked.status != "in_review":
            raise NotInReview(parked)
        live = live_intents(c, parked) if parked.kind == "payment" else []
        if live:
            metrics.STRIPE_INCIDENTS.labels(parked.kind, "charged_in_review").inc()
            log.error("INCIDENT: job %s in review is charged at Stripe: %s", job_id, live, extra={"job_id": job_id})
            raise ChargedAtStripe(parked, live)
    with c.db.begin() as conn:
        job = job_repo.get(conn, job_id, for_update=True, merchant=merchant)
        if job.status != "in_review":
            raise NotInReview(job)
        if decision == "decline":
            error = {"code": "review_declined", "message": f"Declined in review by {reviewer}."}
            job_repo.checkpoint(
                conn, job.id, stage=None, stage_results={}, public={"review": review}, status="failed", error=error
            )
            view = job_repo.get(conn, job.id).view()
            add_event(conn, job_id=job.id, event_type="job.failed", event_key=f"{job.id}:job.failed", payload=view)
            audit.review_decided(conn, job=job, decision=decision, reviewer=reviewer)
            return job_repo.get(conn, job.id)
        generation = job.enqueue_generation + 1
        job_repo.checkpoint(
            conn, job.id, stage=None, stage_results={}, public={"review": review}, status="processing", clear_error=True
        )
        conn.execute(jobs.update().where(jobs.c.id == job.id).values(enqueue_generation=generation))
        send_again(c.broker, job, f":review:{generation}")
        audit.review_decided(conn, job=job, decision=decision, reviewer=reviewer)
        return job_repo.get(conn, job.id)
