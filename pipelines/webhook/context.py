"""What a webhook handler works with, and how it finds the job (a payment, or a subscription charge) a Stripe object
belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.tables import jobs

#: The job kinds that charge through the payment pipeline's charge stage (their PaymentIntent is recorded in the
#: same place): a 3-D Secure charge of either is resumed the same way.
CHARGING_KINDS = ("payment", "subscription")


@dataclass
class HandlerContext:
    """The database, the broker (to send a resumed payment again), the Stripe gateway and the webhook job's id (for
    Stripe call accounting)."""

    db: sa.Engine
    broker: Any
    stripe: Any
    job_id: str


def payment_job_for(
    db: sa.Engine,
    *,
    job_id: str | None = None,
    payment_intent: str | None = None,
    kinds: tuple[str, ...] = ("payment",),
) -> str | None:
    """The id of the job of one of ``kinds`` (payments by default) that made ``payment_intent`` (or ``job_id`` from
    the object's metadata, checked).

    The metadata is the engine's own mark on what it creates; the recorded PaymentIntent of the job is the
    fallback (objects Stripe copies without metadata).  None when the engine knows no such job.
    """
    with db.connect() as conn:
        if job_id:
            try:
                job = job_repo.get(conn, job_id)
            except job_repo.JobNotFound:
                job = None
            if job is not None and job.kind in kinds:
                return job.id
        if not payment_intent:
            return None
        return job_for_intent(conn, payment_intent, kinds)


def job_for_intent(conn: sa.Connection, payment_intent: str, kinds: tuple[str, ...] = CHARGING_KINDS) -> str | None:
    """The id of the job of one of ``kinds`` whose charge stage recorded ``payment_intent`` (None when none did)."""
    found = conn.execute(
        sa.select(jobs.c.id)
        .where(
            jobs.c.kind.in_(kinds),
            sa.or_(
                jobs.c.stage_results["charge"]["payment_intent"].astext == payment_intent,
                jobs.c.stage_results["charge_progress"]["payment_intent"].astext == payment_intent,
            ),
        )
        .limit(1)
    ).scalar_one_or_none()
    return str(found) if found else None


def metadata_job_id(obj: dict[str, Any]) -> str | None:
    """``metadata.job_id`` of a Stripe object, if any."""
    value = (obj.get("metadata") or {}).get("job_id")
    return str(value) if value else None
