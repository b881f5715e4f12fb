"""The janitor (a scheduler task): payments whose Stripe outcome the engine does not know, and held refunds.

* Payments and subscription charges (creates, upgrades) parked ``requires_action`` (3-D Secure) or
  ``processing`` with a PaymentIntent whose outcome was unknown are re-polled once they have waited
  :data:`REPOLL_AFTER_SECONDS`: the intent is looked up (never charged again) and, when Stripe has decided, the job
  is resumed as the webhook would (a lost or never-sent webhook must not leave a payment parked forever).  The age
  of the oldest such job per status is exported as ``payments_stripe_unresolved_age_seconds{status}``.
* Refunds held for payments that settled since are released (:func:`pipelines.refund.holds.sweep_held`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from stripe import StripeError

from engine.adapters.stripe_gateway import StripeGateway
from engine.db.tables import jobs
from engine.errors import TransientError
from engine.runtime import metrics
from pipelines.refund.holds import sweep_held
from pipelines.webhook.context import CHARGING_KINDS
from pipelines.webhook.payment_intent import resume_parked_payment

log = logging.getLogger(__name__)

REPOLL_AFTER_SECONDS = 60.0
BATCH = 100
#: Intent statuses meaning Stripe has decided (succeeded, or failed and waiting for another method).
DECIDED = ("succeeded", "requires_payment_method", "canceled")


def unresolved(db: sa.Engine, now: datetime) -> list[dict[str, Any]]:
    """Payments and subscription charges waiting for Stripe's outcome, oldest first: id, status, intent, age in
    seconds."""
    progress_intent = jobs.c.stage_results["charge_progress"]["payment_intent"].astext
    charge_intent = jobs.c.stage_results["charge"]["payment_intent"].astext
    uncertain = jobs.c.stage_results["charge_progress"]["uncertain"].astext == "true"
    query = (
        sa.select(jobs.c.id, jobs.c.status, jobs.c.updated_at, progress_intent.label("p"), charge_intent.label("c"))
        .where(
            jobs.c.kind.in_(CHARGING_KINDS),
            sa.or_(
                jobs.c.status == "requires_action",
                sa.and_(jobs.c.status == "processing", sa.or_(progress_intent.is_not(None), uncertain)),
            ),
        )
        .order_by(jobs.c.updated_at)
        .limit(BATCH)
    )
    with db.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {
            "id": r["id"],
            "status": r["status"],
            "payment_intent": r["p"] or r["c"],
            "age": max(0.0, (now - r["updated_at"]).total_seconds()),
        }
        for r in rows
    ]


def run(db: sa.Engine, broker: Any, stripe_or_none: StripeGateway | None, now: datetime) -> str:
    """One janitor pass (a scheduler task); a one-line report.  Stripe errors on one payment are logged and the
    rest go on.  Raises :class:`TransientError` when payments are due for a look at Stripe but Stripe is neither
    configured nor running."""
    released = sweep_held(db, broker)
    waiting = unresolved(db, now)
    for status in ("requires_action", "processing"):
        ages = [w["age"] for w in waiting if w["status"] == status]
        metrics.STRIPE_UNRESOLVED_AGE.labels(status).set(max(ages, default=0.0))
    due = [w for w in waiting if w["age"] >= REPOLL_AFTER_SECONDS]
    resumed = 0
    if due:
        if stripe_or_none is None:
            raise TransientError(f"{len(due)} payment(s) await Stripe, but Stripe is neither configured nor running")
        resumed = _repoll(db, broker, stripe_or_none, due)
    return (
        f"{released} held refund(s) released, {len(waiting)} payment(s) awaiting Stripe, "
        f"{len(due)} re-polled, {resumed} resumed"
    )


def _repoll(db: sa.Engine, broker: Any, stripe: StripeGateway, due: list[dict[str, Any]]) -> int:
    """Look the intents of ``due`` payments up; resume the parked ones Stripe has decided.  How many resumed."""
    resumed = 0
    for item in due:
        try:
            intent = stripe.find_intent(item["id"], None, item["payment_intent"])
        except StripeError as exc:
            log.warning("janitor: could not look up the intent of %s: %s", item["id"], exc)
            continue
        if intent is None or intent.status not in DECIDED:
            continue
        parked = item["status"] == "requires_action"
        if parked and resume_parked_payment(db, broker, item["id"], str(intent.id), "janitor") == "resumed":
            resumed += 1
    return resumed
