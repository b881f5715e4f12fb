"""``charge.refunded``: book refunds made outside the engine (the Stripe dashboard) once.

Refunds the engine makes carry ``metadata.job_id`` and are booked by their refund job; they are skipped here, so
nothing is booked twice.  Every other refund of the charge (listed from Stripe, not trusted from the event) is
booked under the payment's row lock, with the same proportional VAT split as the engine's refunds, as a
``source = 'stripe'`` row of ``refunds`` (unique on the Stripe refund id) and a ledger transaction with effect key
``refund:{stripe refund id}:issue`` — both idempotent, in one transaction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from engine.adapters.stripe_gateway import metadata_of
from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.db.tables_refunds import COUNTED_STATUSES, refunds
from engine.domain.ledger import refund_issued
from engine.domain.vat import proportional_vat
from engine.errors import PoisonError
from pipelines.refund.request import payment_figures
from pipelines.webhook.context import HandlerContext, metadata_job_id, payment_job_for

#: Refund statuses that moved money (pending card refunds are paid unless Stripe later says otherwise).
BOOKABLE = ("succeeded", "pending")


def handle(ctx: HandlerContext, event: dict[str, Any]) -> dict[str, Any]:
    """Book the charge's refunds that the engine did not make; report which were booked."""
    charge = event["data"]["object"]
    intent = charge.get("payment_intent")
    payment_id = payment_job_for(ctx.db, job_id=metadata_job_id(charge), payment_intent=intent)
    if payment_id is None:
        return {"outcome": "ignored", "reason": "no payment job for this charge"}
    listed = ctx.stripe.list_refunds(ctx.job_id, charge=charge["id"])
    outside = [r for r in listed if not metadata_of(r).get("job_id") and r.status in BOOKABLE]
    booked = [r.id for r in sorted(outside, key=lambda r: int(r.created or 0)) if book(ctx, payment_id, r)]
    return {"outcome": "booked" if booked else "nothing_new", "payment": payment_id, "booked": booked}


def book(ctx: HandlerContext, payment_id: str, refund: Any) -> bool:
    """Book one dashboard refund against ``payment_id``; False when it was booked before.

    Raises :class:`PoisonError` when Stripe refunded more than the engine's figures leave (they disagree).
    """
    with ctx.db.begin() as conn:
        payment = job_repo.get(conn, payment_id, for_update=True)
        known = conn.execute(sa.select(refunds.c.id).where(refunds.c.stripe_refund_id == refund.id)).first()
        if known is not None:
            return False
        figures = payment_figures(payment)
        amount = int(refund.amount)
        done_total, done_vat = _refunded(conn, payment_id, COUNTED_STATUSES)
        if amount > figures.total - done_total:
            # Stripe paid this refund first, so an engine reservation for the same money will be refused by
            # Stripe; split against what has actually been paid out.
            done_total, done_vat = _refunded(conn, payment_id, ("succeeded",))
        if amount > figures.total - done_total:
            raise PoisonError(f"Stripe refund {refund.id} of {amount} exceeds what remains of payment {payment_id}")
        net, vat = proportional_vat(amount, figures, done_total, done_vat)
        inserted = conn.execute(
            pg_insert(refunds)
            .values(
                id=refund.id,
                payment_job_id=payment_id,
                source="stripe",
                status="succeeded",
                amount=amount,
                net=net,
                vat=vat,
                currency=figures.currency,
                stripe_refund_id=refund.id,
            )
            .on_conflict_do_nothing()
            .returning(refunds.c.id)
        ).first()
        if inserted is None:
            return False
        customer = (payment.request.get("customer") or {}).get("id") or payment.customer_id or "unknown"
        txn = refund_issued(
            refund.id,
            customer,
            figures.currency,
            net,
            vat,
            figures.country,
            payment_id,
            vat_rate=figures.rate,
            vat_scheme=figures.scheme,
        )
        txn = dataclasses.replace(
            txn,
            job_id=ctx.job_id,
            description=f"refund {refund.id} made in Stripe, of payment {payment_id}",
            metadata={**txn.metadata, "stripe_refund": refund.id, "source": "stripe"},
        )
        record(conn, txn)
    return True


def _refunded(conn: sa.Connection, payment_id: str, statuses: tuple[str, ...]) -> tuple[int, int]:
    total, vat = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(refunds.c.amount), 0), sa.func.coalesce(sa.func.sum(refunds.c.vat), 0)
        ).where(refunds.c.payment_job_id == payment_id, refunds.c.status.in_(statuses))
    ).one()
    return int(total), int(vat)
