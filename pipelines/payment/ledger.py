"""Stage ``ledger``: book the capture (revenue and VAT payable against Stripe clearing) and Stripe's fee on it,
balanced per currency.

The fee is read from the charge's balance transaction (one Stripe GET, :func:`engine.adapters.stripe_balance.
charge_fee`) and booked in the same transaction as the capture: Dr ``fees`` / Cr ``stripe_clearing``, so that
``stripe_clearing`` holds what Stripe will pay out (docs/ledger.md).  The write runs in the transaction of the next
checkpoint (the final one, with the job's outbox event); a redelivery reads the same immutable balance transaction
and the effect key books nothing twice.

A payment whose request asks for an invoice (``"invoice": true``) also gets its invoice numbered here, in the same
transaction as the capture, from the seller's gap-free series (the subscriptions' one, :mod:`engine.invoices`); the
stage then checkpoints, so the number is committed before the ``invoice`` stage puts the PDF, and a redelivery
after the put finds the same number (one number, one object).  Without an invoice nothing changes: no checkpoint
of its own, no extra commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import stripe

from config.settings import Settings
from engine.adapters.stripe_balance import Fee, charge_fee
from engine.adapters.stripe_gateway import StripeGateway
from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.domain.ledger import payment_captured
from engine.errors import TransientError, classify_stripe_error
from engine.invoices import document as invoice_document
from engine.invoices import numbering
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
    #: The seller an invoice is issued by (None: a payment that asks for an invoice cannot be booked).
    settings: Settings | None = None
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
        result: dict[str, Any] = {"fee": {"amount": fee.amount, "currency": fee.currency}} if fee else {}
        invoiced = bool(job.request.get("invoice"))
        document = self._document(job, amounts) if invoiced else None

        def write(conn: sa.Connection) -> None:
            ledger_id = record(conn, txn)
            extra = {"ledger_transaction": ledger_id, **result}
            if document is not None:
                invoice = self._issue(conn, job, amounts, document)
                extra["invoice"] = {"number": invoice["number"], "s3_key": invoice["s3_key"]}
            job_repo.merge_result(conn, job.id, extra)

        # With an invoice, the number is committed here, before the invoice stage stores the PDF under it.
        return StageResult(data=LedgerOutput(txn.effect_key), write=write, checkpoint=invoiced)

    def _document(self, job: Job, amounts: VatOutput) -> dict[str, Any]:
        """The invoice document of the payment (one line: its description, net).  Raises :class:`RuntimeError`
        when the stage was built without the seller's settings."""
        if self.settings is None:
            raise RuntimeError("the ledger stage needs the seller's settings to invoice a payment")
        charged = job.output_or_none(ChargeOutput)
        return invoice_document.build(
            self.settings,
            job.request["customer"],
            currency=amounts.currency,
            lines=[{"description": job.request.get("description") or f"Payment {job.id}", "amount": amounts.net}],
            net=amounts.net,
            vat=amounts.vat,
            vat_country=amounts.country,
            vat_rate=amounts.rate,
            vat_scheme=amounts.scheme,
            notes=amounts.notes,
            payment_intent=charged.payment_intent if charged else None,
        )

    def _issue(self, conn: sa.Connection, job: Job, amounts: VatOutput, document: dict[str, Any]) -> sa.RowMapping:
        assert self.settings is not None
        return numbering.issue(
            conn,
            seller=invoice_document.seller_key(self.settings),
            # Whole seconds, as the subscriptions' invoices; a redone stage gets the row issued the first time.
            issued_at=datetime.now(UTC).replace(microsecond=0),
            job_id=job.id,
            subscription_id=None,
            customer_id=job.request["customer"]["id"],
            currency=amounts.currency,
            net=amounts.net,
            vat=amounts.vat,
            vat_country=amounts.country,
            vat_rate=amounts.rate,
            vat_scheme=amounts.scheme,
            document=document,
        )

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
