"""Stage ``ledger``: book the capture (revenue and VAT payable against Stripe clearing), balanced per currency.

The write runs in the transaction of the next checkpoint (the final one, with the job's outbox event).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.domain.ledger import payment_captured
from engine.jobs.job import Job
from engine.jobs.output import LedgerOutput
from engine.jobs.pipeline import StageResult
from pipelines.payment.vat import VatOutput


@dataclass
class LedgerStage:
    name: str = "ledger"

    def run(self, job: Job) -> StageResult:
        amounts = job.output(VatOutput)
        txn = payment_captured(
            job.id,
            job.request["customer"]["id"],
            amounts.currency,
            amounts.net,
            amounts.vat,
            amounts.country,
            vat_rate=amounts.rate,
            vat_scheme=amounts.scheme,
        )

        def write(conn: sa.Connection) -> None:
            ledger_id = record(conn, txn)
            job_repo.merge_result(conn, job.id, {"ledger_transaction": ledger_id})

        return StageResult(data=LedgerOutput(txn.effect_key), write=write)
