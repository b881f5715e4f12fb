"""Stage ``ledger``: book the refund (refunds net, VAT payable back, Stripe clearing total) and mark it done; a
refund of an invoiced charge issues its credit note in the same transaction (engine/invoices/credit_notes.py).

The write runs in the transaction of the final checkpoint, with the job's outbox event: the ledger transaction,
the refund row turning ``succeeded`` (``pending`` while Stripe has not settled the refund: a later failure reverses
it, pipelines/refund/booking.py) and the job's status commit together or not at all.  The booking is idempotent on
its effect key, so a ``charge.refunded`` webhook that booked the same refund first leaves nothing to add.  A refund
that Stripe reported failed before the job booked it ends the job ``failed`` (``refund_failed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.db.tables_refunds import refunds
from engine.domain.ledger import refund_issued
from engine.errors import TransientError
from engine.invoices import credit_notes
from engine.jobs.job import Job
from engine.jobs.output import LedgerOutput
from engine.jobs.pipeline import StageResult
from pipelines.refund.amount import AmountOutput
from pipelines.refund.booking import row_status
from pipelines.refund.stripe_refund import RefundOutput


@dataclass
class LedgerStage:
    db: sa.Engine
    name: str = "ledger"

    def run(self, job: Job) -> StageResult:
        d = job.output(AmountOutput)
        refunded = job.output_or_none(RefundOutput)
        stripe_refund = refunded.refund if refunded else None
        with self.db.connect() as conn:
            now = conn.execute(sa.select(refunds.c.status).where(refunds.c.id == job.id)).scalar_one_or_none()
        if now in ("failed", "reversed"):
            # refund.failed arrived between the refund stage and this one: nothing is booked (or the booking the
            # webhook made is reversed), nothing is owed.
            message = f"Stripe refund {stripe_refund} failed before it was booked."
            return StageResult(data={}, status="failed", error={"code": "refund_failed", "message": message})
        booked_as = row_status(refunded.status) if refunded else "succeeded"
        txn = refund_issued(
            job.id,
            str(d.customer),
            d.currency,
            d.net,
            d.vat,
            d.vat_country,
            d.payment,
            # Outputs of refunds decided before these were recorded lack them (docs/reports.md).
            vat_rate=d.vat_rate,
            vat_scheme=d.vat_scheme,
        )

        def write(conn: sa.Connection) -> None:
            # The refund row first, then the ledger: the webhook handlers lock in the same order (no deadlock).
            # Only a reservation turns booked: a row the webhook already booked, settled or reversed keeps its state.
            moved = conn.execute(
                refunds.update()
                .where(refunds.c.id == job.id, refunds.c.status == "reserved")
                .values(status=booked_as, stripe_refund_id=stripe_refund, updated_at=sa.func.now())
                .returning(refunds.c.id)
            ).first()
            if moved is None:
                state = conn.execute(sa.select(refunds.c.status).where(refunds.c.id == job.id)).scalar_one_or_none()
                if state in ("failed", "reversed"):
                    # Lost a race with refund.failed: roll the booking back; the next delivery fails the job.
                    raise TransientError(f"Stripe refund {stripe_refund} failed while it was being booked")
            ledger_id = record(conn, txn)
            extra: dict[str, object] = {"ledger_transaction": ledger_id}
            # An invoiced charge (a subscription's) is corrected by a credit note, issued with the booking.
            note = credit_notes.for_refund(
                conn, charge_job_id=d.payment, refund_row_id=job.id, net=d.net, vat=d.vat, job_id=job.id
            )
            if note is not None:
                extra["credit_note"] = credit_notes.public(note)
            job_repo.merge_result(conn, job.id, extra)

        return StageResult(data=LedgerOutput(txn.effect_key), write=write)
