"""``payment_intent.succeeded`` / ``payment_intent.payment_failed``: Stripe decided a payment the engine parked.

A payment parked ``requires_action`` (3-D Secure) is resumed: its recovery point goes back to before the charge
stage, with the PaymentIntent recorded as the charge's progress, and its message is sent again on the payments
queue.  The charge stage then looks the intent up (never charging again) and the pipeline goes on to the ledger
and the notification, or fails with the intent's error.  A payment still ``processing`` with an unknown outcome
needs nothing: its own message is being retried and will find the intent.  The janitor uses the same resume.

A subscription job (create or upgrade) parked ``requires_action`` is resumed the same way: its charge stages are
the payment pipeline's, wrapped (``pipelines/subscription/steps.py``) under the same names, so it restarts after
``vat`` on the subscriptions queue and goes on to ``apply`` (booking, invoice, subscription state).
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.tables import jobs
from engine.jobs.resend import send_again
from pipelines.payment.charge import ChargeOutput
from pipelines.payment.vat import VatStage
from pipelines.webhook.context import CHARGING_KINDS, HandlerContext, metadata_job_id, payment_job_for

log = logging.getLogger(__name__)

#: The recovery point a resumed payment (or subscription charge) restarts from: the stage before the charge in both
#: pipelines (tests/unit/jobs/test_registry.py checks it against the kinds' stage lists).
BEFORE_CHARGE = VatStage.name


def resume_parked_payment(db: sa.Engine, broker: Any, payment_job_id: str, payment_intent: str, why: str) -> str:
    """Resume the payment ``payment_job_id`` if it is parked ``requires_action``; what was done, as a word.

    ``resumed`` (message sent again; ``why`` is logged), ``pending`` (still processing: its own message
    resolves it) or ``settled`` (nothing to do).  Raises what SQS raises (the job stays parked).
    """
    with db.begin() as conn:
        job = job_repo.get(conn, payment_job_id, for_update=True)
        if job.status in ("accepted", "processing"):
            return "pending"
        if job.status != "requires_action":
            return "settled"
        charge = job.output_or_none(ChargeOutput)
        progress = {"generation": charge.generation if charge else 1, "payment_intent": payment_intent}
        generation = job.enqueue_generation + 1
        job_repo.checkpoint(
            conn,
            job.id,
            stage=BEFORE_CHARGE,  # the charge stage runs again and finds the intent
            stage_results={"charge_progress": progress},
            public={"next_action": None},
            status="processing",
            clear_error=True,
        )
        conn.execute(jobs.update().where(jobs.c.id == job.id).values(enqueue_generation=generation))
        send_again(broker, job, f":reconcile:{generation}")
    log.info("payment %s resumed (%s)", payment_job_id, why, extra={"job_id": payment_job_id})
    return "resumed"


def handle(ctx: HandlerContext, event: dict[str, Any]) -> dict[str, Any]:
    """Resume the payment or subscription charge an intent event is about; report what was done."""
    intent = event["data"]["object"]
    payment = payment_job_for(
        ctx.db, job_id=metadata_job_id(intent), payment_intent=intent.get("id"), kinds=CHARGING_KINDS
    )
    if payment is None:
        return {"outcome": "ignored", "reason": "no payment or subscription job for this PaymentIntent"}
    outcome = resume_parked_payment(ctx.db, ctx.broker, payment, str(intent["id"]), "webhook")
    return {"outcome": outcome, "payment": payment}
