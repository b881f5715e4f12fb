"""What the ingest can already refuse about a refund (``POST /v1/refunds``), so the client gets a 422 at once
instead of a refund job that fails.  "Payment" below is the job that charged: a payment or a subscription job.

The worker's ``amount`` stage still decides under the payment's row lock (two refunds accepted at once are both
checked again there); this is the fast answer for the cases that are already certain when the request arrives:

* the payment failed, or settled without charging (a subscription cancel, a trial's start) — nothing was captured
  → 422 ``payment_not_captured``;
* the payment succeeded and the amount asked (or, without one, anything at all) exceeds what remains — the total
  less every reserved, pending or succeeded refund, the engine's and the dashboard's → 422
  ``refund_exceeds_captured``, naming what remains.

A payment still on its way (accepted, charging, 3-D Secure, in review) is not refused: its refund is held until
the payment settles (pipelines/refund/holds.py).
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.db.tables_refunds import COUNTED_STATUSES, refunds
from engine.domain.money import format_amount
from engine.ingest.errors import ApiError
from engine.jobs.job import FINAL, Job
from pipelines.refund.request import PaymentNotRefundable, payment_figures


def check_refundable(db: sa.Engine, payment: Job, amount: int | None) -> None:
    """Raise :class:`ApiError` 422 (module docstring) when the refund is certain to fail; return otherwise."""
    if payment.status == "failed":
        raise ApiError(
            422, "payment_not_captured", f"Payment {payment.id} failed; nothing was captured.", param="payment"
        )
    if payment.status not in FINAL:
        return
    try:
        figures = payment_figures(payment)
    except PaymentNotRefundable:
        raise ApiError(
            422, "payment_not_captured", f"Job {payment.id} captured nothing to refund.", param="payment"
        ) from None
    with db.connect() as conn:
        done = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount), 0)).where(
                refunds.c.payment_job_id == payment.id, refunds.c.status.in_(COUNTED_STATUSES)
            )
        ).scalar_one()
    remaining = figures.total - int(done)
    asked = amount if amount is not None else max(remaining, 1)
    if asked > remaining:
        left = format_amount(max(remaining, 0), figures.currency)
        raise ApiError(
            422,
            "refund_exceeds_captured",
            f"A refund of {format_amount(asked, figures.currency)} exceeds what remains of payment {payment.id}: "
            f"{left} (remaining {max(remaining, 0)} minor units).",
            param="amount",
        )
