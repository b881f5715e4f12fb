"""Stage ``ledger``: book the capture (revenue and VAT payable against Stripe clearing) and Stripe's fee on it,
balanced per currency.

The fee is read from the charge's balance transaction (one Stripe GET, :func:`engine.adapters.stripe_balance.
charge_fee`) and booked in the same transaction as the capture: Dr ``fees`` / Cr ``stripe_clearing``, so that
``stripe_clearing`` holds what Stripe will pay out (docs/ledger.md).  The write runs in the transaction of the next
checkpoint (the final one, with the job's outbox event); a redelivery reads the same immutable balance transaction
and the effect key books nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
import stripe

from engine.adapters.stripe_balance import Fee, charge_fee
from engine.adapters.stripe_gateway import StripeGateway
from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.domain.ledger import payment_captured
from engine.errors import TransientError, classify_stripe_error
from engine.jobs.job import Job
from engine.jobs.output import LedgerOutput
from engine.jobs.pipeline import StageResult
from pipelines.payment.charge import ChargeOutput
from pipelines.payment.vat import VatOutput

log = logging.getLogger(__name__)


@dataclass
class LedgerStage:
    """Books the payment.  ``stripe`` is the gateway the fee is read through (None: no fee is booked, for
    pipelines built without Stripe)."""

    stripe: StripeGateway | None = None
    name: str = "ledger"

    def run(self, job: Job) -> StageResult:
        amounts = job.output(VatOutput)
        fee = self._fee(job)
        txn = payment_captured(
            job.id,
            job.request["customer"]["id"],
            amounts.currency,
            amounts.net,
            amounts.vat,
            amounts.country,
            fee=fee.amount if fee else 0,
            vat_rate=amounts.rate,
            vat_scheme=amounts.scheme,
            fee_currency=fee.currency if fee else None,
        )
        result = {"fee": {"amount": fee.amount, "currency": fee.currency}} if fee else {}

        def write(conn: sa.Connection) -> None:
            ledger_id = record(conn, txn)
            job_repo.merge_result(conn, job.id, {"ledger_transaction": ledger_id, **result})

        return StageResult(data=LedgerOutput(txn.effect_key), write=write)

    def _fee(self, job: Job) -> Fee | None:
        """Stripe's fee on the job's charge.  Raises :class:`TransientError` when Stripe cannot say now; a
        permanent answer (the charge is gone) books no fee and says so in the log."""
        charged = job.output_or_none(ChargeOutput)
        if self.stripe is None or charged is None:
            return None
        try:
            return charge_fee(self.stripe, job.id, charge=charged.charge, payment_intent=charged.payment_intent)
        except stripe.StripeError as exc:
            if classify_stripe_error(exc).kind == "transient":
                raise TransientError(f"could not read the fee of payment {job.id}: {exc}") from exc
            log.warning("payment %s: no fee booked, Stripe refused the balance transaction: %s", job.id, exc)
            return None
