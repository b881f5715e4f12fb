"""Stage ``ledger``: book the refund (refunds net, VAT payable back, Stripe clearing total) and mark it done.

The write runs in the transaction of the final checkpoint, with the job's outbox event: the ledger transaction,
the refund row turning ``succeeded`` and the job's status commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.db.tables_refunds import refunds
from engine.domain.ledger import refund_issued
from engine.jobs.job import Job
from engine.jobs.output import LedgerOutput
from engine.jobs.pipeline import StageResult
from pipelines.refund.amount import AmountOutput
from pipelines.refund.stripe_refund import RefundOutput


@dataclass
class LedgerStage:
    name: str = "ledger"

    def run(self, job: Job) -> StageResult:
        d = job.output(AmountOutput)
        refunded = job.output_or_none(RefundOutput)
        stripe_refund = refunded.refund if refunded else None
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
            ledger_id = record(conn, txn)
            conn.execute(
                refunds.update()
                .where(refunds.c.id == job.id)
                .values(status="succeeded", stripe_refund_id=stripe_refund, updated_at=sa.func.now())
            )
            job_repo.merge_result(conn, job.id, {"ledger_transaction": ledger_id})

        return StageResult(data=LedgerOutput(txn.effect_key), write=write)
