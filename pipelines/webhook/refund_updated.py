"""``refund.updated``, ``refund.failed`` and ``charge.refund.updated``: follow a refund Stripe settles later.

The refund is read from Stripe (not trusted from the event: events can arrive out of order).  A live refund the
engine has not booked yet is booked first (as ``charge.refunded`` does), then its row follows Stripe
(:func:`pipelines.refund.booking.settle`): ``succeeded`` settles a ``pending`` row; ``failed`` or ``canceled``
reverses a booked refund in the ledger (effect ``refund:{row}:reverse``), so it stops counting against what remains
refundable, or releases a reservation that was never booked.  All under the payment's row lock, idempotent.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.adapters.stripe_gateway import metadata_of
from engine.db import jobs as job_repo
from engine.db.tables_refunds import refunds
from pipelines.refund.booking import LIVE, settle
from pipelines.webhook import charge_refunded
from pipelines.webhook.context import CHARGING_KINDS, HandlerContext, payment_job_for


def handle(ctx: HandlerContext, event: dict[str, Any]) -> dict[str, Any]:
    """Bring the refund's booking in line with Stripe; report what changed."""
    obj = event["data"]["object"]
    refund = ctx.stripe.retrieve_refund(ctx.job_id, str(obj["id"]))
    metadata = metadata_of(refund)
    payment_id = payment_job_for(
        ctx.db,
        job_id=metadata.get("payment_job_id"),
        payment_intent=getattr(refund, "payment_intent", None),
        kinds=CHARGING_KINDS,
    )
    if payment_id is None:
        return {"outcome": "ignored", "reason": "no payment job for this refund"}
    booked = False
    if refund.status in LIVE:
        booked = charge_refunded.book_any(ctx, payment_id, refund)
    with ctx.db.begin() as conn:
        job_repo.get(conn, payment_id, for_update=True)
        row_id = conn.execute(
            sa.select(refunds.c.id)
            .where(
                sa.or_(refunds.c.stripe_refund_id == refund.id, refunds.c.id == (metadata.get("job_id") or refund.id))
            )
            .order_by((refunds.c.stripe_refund_id == refund.id).desc())
            .limit(1)
        ).scalar_one_or_none()
        outcome = settle(conn, str(row_id), refund, ctx.job_id) if row_id is not None else "unchanged"
    if booked and outcome == "unchanged":
        outcome = "booked"
    return {"outcome": outcome, "payment": payment_id, "refund": refund.id, "status": refund.status}
