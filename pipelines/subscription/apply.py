"""Stage ``apply``: a subscription charge succeeded — book it, number its invoice, move the subscription on.

In one transaction (this stage checkpoints): the subscription's ``success`` state change, the ledger (the invoice
issued to ``receivable:{customer}`` and paid from ``stripe_clearing``, effects ``subscription:{job}:invoice`` and
``subscription:{job}:paid``), the invoice numbered from the seller's counter (gap-free), the job's
``ledger_transaction`` and ``invoice{number, s3_key}``, and the ``subscription.*`` outbox event.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from config.settings import Settings
from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.domain.ledger import invoice_issued, invoice_paid
from engine.invoices import numbering
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from pipelines.payment.charge import ChargeOutput
from pipelines.payment.vat import VatOutput
from pipelines.subscription import repo
from pipelines.subscription.prepare import PrepareOutput
from pipelines.subscription.repo import parse_time


@dataclass(frozen=True)
class ApplyOutput(StageOutput):
    """The effect keys of the two ledger transactions booked (invoice issued, invoice paid)."""

    STAGE = "apply"

    invoice_effects: tuple[str, ...]


@dataclass
class ApplyStage:
    #: The seller (its country and VAT id) the invoice is issued by.
    settings: Settings
    name: str = "apply"

    @property
    def seller_country(self) -> str:
        return self.settings.seller.country

    @property
    def seller_vat_id(self) -> str | None:
        return self.settings.seller.vat_id

    @property
    def seller(self) -> str:
        """The seller's key for invoice numbering: its VAT id, else its country."""
        return self.seller_vat_id or self.seller_country

    def run(self, job: Job) -> StageResult:
        decision = job.output(PrepareOutput)
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
        paid = invoice_paid(f"subscription:{job.id}:paid", customer["id"], currency, total, job_id=job.id)
        billed_at = parse_time(decision.billed_at)
        assert billed_at is not None
        document = {
            "seller": {"country": self.seller_country, "vat_id": self.seller_vat_id},
            "customer": {k: customer.get(k) for k in ("id", "email", "country", "vat_id", "type")},
            "currency": currency,
            "lines": decision.lines,
            "net": net,
            "vat_amount": tax,
            "total": total,
            "vat": {"country": vat.country, "rate": vat.rate, "scheme": vat.scheme},
            "notes": list(vat.notes),
            "subscription": sub_id,
            "payment_intent": charge.payment_intent if charge else None,
        }
        change = decision.success
        event = decision.success_event
        create = decision.create
        assert change is not None and event is not None

        def write(conn: sa.Connection) -> None:
            repo.apply(conn, sub_id, change, create=create)
            ledger_id = record(conn, issued)
            record(conn, paid)
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
            extra = {
                "ledger_transaction": ledger_id,
                "invoice": {"number": invoice["number"], "s3_key": invoice["s3_key"]},
            }
            job_repo.merge_result(conn, job.id, extra)
            row = repo.get(conn, sub_id)
            assert row is not None
            repo.notify(conn, row, event, f"subscription:{sub_id}:{job.id}:{event}", job.id)

        return StageResult(
            data=ApplyOutput((issued.effect_key, paid.effect_key)),
            public={"subscription": decision.after},
            write=write,
            checkpoint=True,
        )
