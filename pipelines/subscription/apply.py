"""Stage ``apply``: a subscription charge succeeded — book it, number its invoice, move the subscription on.

In one transaction (this stage checkpoints): the subscription's ``success`` state change, the ledger (the invoice
issued to ``receivable:{customer}`` and paid from ``stripe_clearing``, effects ``subscription:{job}:invoice`` and
``subscription:{job}:paid``) and Stripe's fee on the charge from its balance transaction (``subscription:{job}:fee``:
Dr ``fees`` / Cr ``stripe_clearing``), the invoice numbered from the seller's counter (gap-free), the job's
``ledger_transaction`` and ``invoice{number, s3_key}``, and the ``subscription.*`` outbox event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import stripe

from config.settings import Settings
from engine.adapters.stripe_balance import Fee, charge_fee
from engine.adapters.stripe_gateway import StripeGateway
from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.domain.ledger import credit_applied, credit_note_issued, invoice_issued, invoice_paid, stripe_fee
from engine.errors import TransientError, classify_stripe_error
from engine.invoices import credit_notes, numbering
from engine.invoices import document as invoice_document
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from pipelines.payment.charge import ChargeOutput
from pipelines.payment.vat import VatOutput
from pipelines.subscription import repo
from pipelines.subscription.billing import credit_to_apply
from pipelines.subscription.prepare import PrepareOutput
from pipelines.subscription.repo import parse_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyOutput(StageOutput):
    """The effect keys of the two ledger transactions booked (invoice issued, invoice paid)."""

    STAGE = "apply"

    invoice_effects: tuple[str, ...]


@dataclass
class ApplyStage:
    #: The seller (its country and VAT id) the invoice is issued by.
    settings: Settings
    #: Stripe's fee on the charge is read through it (None: no fee booked, for pipelines built without Stripe).
    stripe: StripeGateway | None = None
    name: str = "apply"

    @property
    def seller(self) -> str:
        """The seller's key for invoice numbering (:func:`engine.invoices.document.seller_key`)."""
        return invoice_document.seller_key(self.settings)

    def _fee(self, job: Job, charge: ChargeOutput | None) -> Fee | None:
        """Stripe's fee on the subscription's charge, from its balance transaction (as the payment's ledger stage
        reads it).  Raises :class:`TransientError` when Stripe cannot say now."""
        if self.stripe is None or charge is None:
            return None
        return _read_fee(self.stripe, job.id, charge)

    def run(self, job: Job) -> StageResult:
        decision = job.output(PrepareOutput)
        if decision.credit_note:
            return self._credit(job, decision, decision.credit_note)
        if not decision.charge:
            return StageResult()  # pragma: no cover - prepare ends a job that charges nothing
        vat = job.output(VatOutput)
        charge = job.output_or_none(ChargeOutput)
        sub_id = decision.subscription
        customer = decision.customer
        assert sub_id is not None and customer is not None
        currency, net, tax, total = vat.currency, vat.net, vat.vat, vat.total
        issued = invoice_issued(
            f"subscription:{job.id}:invoice",
            customer["id"],
            currency,
            net,
            tax,
            vat.country,
            job_id=job.id,
            vat_rate=vat.rate,
            vat_scheme=vat.scheme,
        )
        # The customer's booked credit pays first (as the charge step decided: Stripe charged the rest, or nothing).
        applied = credit_to_apply(decision.credit, total, currency)
        released = (
            credit_applied(f"subscription:{job.id}:credit", customer["id"], currency, applied, job.id)
            if applied
            else None
        )
        paid = (
            invoice_paid(f"subscription:{job.id}:paid", customer["id"], currency, total - applied, job_id=job.id)
            if total > applied
            else None
        )
        fee = self._fee(job, charge)
        fee_txn = stripe_fee(f"subscription:{job.id}:fee", fee.currency, fee.amount, job.id) if fee else None
        billed_at = parse_time(decision.billed_at)
        assert billed_at is not None
        document = invoice_document.build(
            self.settings,
            customer,
            currency=currency,
            lines=decision.lines or [],
            net=net,
            vat=tax,
            vat_country=vat.country,
            vat_rate=vat.rate,
            vat_scheme=vat.scheme,
            notes=vat.notes,
            subscription=sub_id,
            payment_intent=charge.payment_intent if charge else None,
            credit_applied=applied,
        )
        change = decision.success
        event = decision.success_event
        create = decision.create
        assert change is not None and event is not None

        def write(conn: sa.Connection) -> None:
            repo.apply(conn, sub_id, change, create=create)
            ledger_id = record(conn, issued)
            for txn in (released, paid):
                if txn is not None:
                    record(conn, txn)
            if fee_txn is not None:
                record(conn, fee_txn)
            invoice = numbering.issue(
                conn,
                seller=self.seller,
                issued_at=billed_at,
                job_id=job.id,
                subscription_id=sub_id,
                customer_id=customer["id"],
                currency=currency,
                net=net,
                vat=tax,
                vat_country=vat.country,
                vat_rate=vat.rate,
                vat_scheme=vat.scheme,
                document=document,
            )
            extra: dict[str, Any] = {
                "ledger_transaction": ledger_id,
                "invoice": {"number": invoice["number"], "s3_key": invoice["s3_key"]},
            }
            if applied:
                extra["credit_applied"] = {"amount": applied, "currency": currency}
            job_repo.merge_result(conn, job.id, extra)
            row = repo.get(conn, sub_id)
            assert row is not None
            repo.notify(conn, row, event, f"subscription:{sub_id}:{job.id}:{event}", job.id)

        effects = tuple(t.effect_key for t in (issued, released, paid) if t is not None)
        return StageResult(
            data=ApplyOutput(effects),
            public={"subscription": decision.after},
            write=write,
            checkpoint=True,
        )

    def _credit(self, job: Job, decision: PrepareOutput, note: dict[str, Any]) -> StageResult:
        """A downgrade's credit: in one transaction, its credit note against the invoice it credits
        (:func:`engine.invoices.credit_notes.issue`, key ``downgrade:{job}``; the scheduler stores the PDF), the
        ledger (``subscription:{job}:credit_note``: Dr ``refunds`` net, Dr ``vat_payable:{CC}`` VAT, Cr
        ``customer_credit:{customer}`` total), the plan change and the event.  Both are keyed, so a redone stage
        books and numbers nothing twice."""
        sub_id, customer, change = decision.subscription, decision.customer, decision.success
        event = decision.success_event
        assert sub_id is not None and customer is not None and change is not None and event is not None
        booked = credit_note_issued(
            f"subscription:{job.id}:credit_note",
            customer["id"],
            note["currency"],
            note["net"],
            note["vat"],
            note["vat_country"],
            job_id=job.id,
            invoice_job_id=note["invoice_job"],
            vat_rate=note["vat_rate"],
            vat_scheme=note["vat_scheme"],
        )
        issued_at = parse_time(decision.billed_at)

        def write(conn: sa.Connection) -> None:
            repo.apply(conn, sub_id, change)
            ledger_id = record(conn, booked)
            invoice = numbering.for_job(conn, note["invoice_job"])
            assert invoice is not None, f"invoice of job {note['invoice_job']} is gone"
            credit_note = credit_notes.issue(
                conn,
                key=f"downgrade:{job.id}",
                invoice=invoice,
                net=note["net"],
                vat=note["vat"],
                job_id=job.id,
                reason=note["reason"],
                issued_at=issued_at,
            )
            extra = {
                "ledger_transaction": ledger_id,
                "credit_note": credit_notes.public(credit_note),
                "credit": {"amount": note["net"] + note["vat"], "currency": note["currency"]},
            }
            job_repo.merge_result(conn, job.id, extra)
            row = repo.get(conn, sub_id)
            assert row is not None
            repo.notify(conn, row, event, f"subscription:{sub_id}:{job.id}:{event}", job.id)

        return StageResult(
            data=ApplyOutput((booked.effect_key,)),
            public={"subscription": decision.after},
            write=write,
            checkpoint=True,
        )


def _read_fee(stripe_gw: StripeGateway, job_id: str, charge: ChargeOutput) -> Fee | None:
    try:
        return charge_fee(stripe_gw, job_id, charge=charge.charge, payment_intent=charge.payment_intent)
    except stripe.StripeError as exc:
        if classify_stripe_error(exc).kind == "transient":
            raise TransientError(f"could not read the fee of subscription charge {job_id}: {exc}") from exc
        log.warning("subscription %s: no fee booked, Stripe refused the balance transaction: %s", job_id, exc)
        return None
