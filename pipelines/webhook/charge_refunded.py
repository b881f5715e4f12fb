"""``charge.refunded``: book every live refund of the charge exactly once, whoever made it.

The charge's refunds are listed from Stripe (not trusted from the event) and each is booked under the payment's row
lock, idempotently, in one transaction:

* a refund the engine made carries ``metadata.job_id``: its refund job normally books it, but a job killed after
  Stripe refunded (and then dead-lettered, or stuck) never would.  It is booked here as the job would book it — the
  job's reservation row, effect key ``refund:{job_id}:issue``, the same postings — so whichever of the job and the
  webhook comes second finds the effect booked and adds nothing (:func:`book_engine_refund`);
* any other refund (the Stripe dashboard) becomes a ``source = 'stripe'`` row of ``refunds`` (unique on the Stripe
  refund id) and a ledger transaction with effect key ``refund:{stripe refund id}:issue``, with the same
  proportional VAT split as the engine's refunds (:func:`book`).

A refund of an invoiced charge issues its credit note with the booking (engine/invoices/credit_notes.py), once
whoever books it.  A ``pending`` refund is booked as ``pending``; ``refund.updated``/``refund.failed`` settle or
reverse it later (pipelines/webhook/refund_updated.py).
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
from engine.invoices import credit_notes
from pipelines.refund.booking import LIVE, row_status
from pipelines.refund.request import payment_figures
from pipelines.webhook.context import CHARGING_KINDS, HandlerContext, metadata_job_id, payment_job_for

#: Refund statuses that moved money (pending card refunds are paid unless Stripe later says otherwise).
BOOKABLE = LIVE


def handle(ctx: HandlerContext, event: dict[str, Any]) -> dict[str, Any]:
    """Book the charge's refunds that the engine did not make; report which were booked."""
    charge = event["data"]["object"]
    intent = charge.get("payment_intent")
    payment_id = payment_job_for(ctx.db, job_id=metadata_job_id(charge), payment_intent=intent, kinds=CHARGING_KINDS)
    if payment_id is None:
        return {"outcome": "ignored", "reason": "no payment job for this charge"}
    listed = ctx.stripe.list_refunds(ctx.job_id, charge=charge["id"])
    live = [r for r in listed if r.status in BOOKABLE]
    booked = [r.id for r in sorted(live, key=lambda r: int(r.created or 0)) if book_any(ctx, payment_id, r)]
    return {"outcome": "booked" if booked else "nothing_new", "payment": payment_id, "booked": booked}


def book_any(ctx: HandlerContext, payment_id: str, refund: Any) -> bool:
    """Book one live refund of ``payment_id``'s charge, the engine's or not; False when it was booked before."""
    job_id = metadata_of(refund).get("job_id")
    if job_id:
        done = book_engine_refund(ctx, payment_id, job_id, refund)
        if done is not None:
            return done
    return book(ctx, payment_id, refund)


def book_engine_refund(ctx: HandlerContext, payment_id: str, job_id: str, refund: Any) -> bool | None:
    """Book refund job ``job_id``'s Stripe refund if the job has not (see the module docstring).

    True when booked now, False when it was booked before, None when the engine has no reservation for that job
    (the refund is then booked as one made outside the engine).  Raises :class:`PoisonError` (an incident to look
    at, never a second booking) when the job already booked another Stripe refund, when Stripe's amount differs from
    the job's reservation, or when reviving a released reservation would exceed what remains of the payment.
    """
    with ctx.db.begin() as conn:
        payment = job_repo.get(conn, payment_id, for_update=True)
        row = (
            conn.execute(
                sa.select(refunds).where(refunds.c.id == job_id, refunds.c.source == "engine").with_for_update()
            )
            .mappings()
            .one_or_none()
        )
        if row is None or row["amount"] is None:
            return None
        if row["stripe_refund_id"] not in (None, refund.id):
            raise PoisonError(
                f"incident: refund job {job_id} booked Stripe refund {row['stripe_refund_id']} and Stripe also holds "
                f"{refund.id} for it (a double refund)"
            )
        if row["status"] in ("pending", "succeeded", "reversed"):
            return False
        amount = int(refund.amount)
        if amount != int(row["amount"]) or str(refund.currency).lower() != str(row["currency"]).lower():
            raise PoisonError(
                f"incident: Stripe refund {refund.id} of job {job_id} is {amount} {refund.currency}, the job reserved "
                f"{row['amount']} {row['currency']}"
            )
        figures = payment_figures(payment)
        if row["status"] == "failed":
            # The job gave up (Stripe refused a second attempt: the first had refunded everything) and released its
            # reservation; Stripe's refund stands, so it counts again — if nothing else took its place meanwhile.
            others, _ = _refunded(conn, payment_id, COUNTED_STATUSES)
            if amount > figures.total - others:
                raise PoisonError(f"Stripe refund {refund.id} of {amount} exceeds what remains of payment {payment_id}")
        customer = (payment.request.get("customer") or {}).get("id") or payment.customer_id or "unknown"
        # Exactly the postings the job's ledger stage books (pipelines/refund/ledger.py), so either may go first.
        txn = refund_issued(
            job_id,
            str(customer),
            figures.currency,
            int(row["net"]),
            int(row["vat"]),
            figures.country,
            payment_id,
            vat_rate=figures.rate,
            vat_scheme=figures.scheme,
        )
        txn = dataclasses.replace(txn, metadata={**txn.metadata, "stripe_refund": refund.id, "booked_by": ctx.job_id})
        record(conn, txn)
        credit_notes.for_refund(
            conn,
            charge_job_id=payment_id,
            refund_row_id=job_id,
            net=int(row["net"]),
            vat=int(row["vat"]),
            job_id=job_id,
        )
        conn.execute(
            refunds.update()
            .where(refunds.c.id == job_id)
            .values(status=row_status(str(refund.status)), stripe_refund_id=refund.id, updated_at=sa.func.now())
        )
    return True


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
            done_total, done_vat = _refunded(conn, payment_id, ("pending", "succeeded"))
        if amount > figures.total - done_total:
            raise PoisonError(f"Stripe refund {refund.id} of {amount} exceeds what remains of payment {payment_id}")
        net, vat = proportional_vat(amount, figures, done_total, done_vat)
        inserted = conn.execute(
            pg_insert(refunds)
            .values(
                id=refund.id,
                payment_job_id=payment_id,
                source="stripe",
                status=row_status(str(refund.status)),
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
        credit_notes.for_refund(
            conn, charge_job_id=payment_id, refund_row_id=refund.id, net=net, vat=vat, job_id=ctx.job_id
        )
    return True


def _refunded(conn: sa.Connection, payment_id: str, statuses: tuple[str, ...]) -> tuple[int, int]:
    total, vat = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(refunds.c.amount), 0), sa.func.coalesce(sa.func.sum(refunds.c.vat), 0)
        ).where(refunds.c.payment_job_id == payment_id, refunds.c.status.in_(statuses))
    ).one()
    return int(total), int(vat)
