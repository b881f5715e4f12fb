"""Stage ``invoice``: render the job's invoice to PDF and store it in the invoices bucket.

Shared by the subscription pipeline and the payment pipeline (for a payment that asks for an invoice).
Idempotent: the document was fixed when the invoice was numbered (a subscription's ``apply``, a payment's
``ledger``), in a transaction committed before this stage runs; rendering is deterministic, and the object key is
the invoice's, so a stage redone after the put (a crash before its checkpoint) overwrites the object with the same
bytes under the same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import BotoCoreError, ClientError

from config.settings import Settings
from engine.errors import TransientError
from engine.invoices import numbering, pdf, store
from engine.jobs.job import Job
from engine.jobs.kind import Lazy
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult


@dataclass(frozen=True)
class InvoiceOutput(StageOutput):
    """The invoice stored: its number, its object key in the invoices bucket and the PDF's size."""

    STAGE = "invoice"

    number: str
    s3_key: str
    bytes: int


@dataclass
class InvoiceStage:
    db: sa.Engine
    s3: Any
    settings: Settings
    name: str = "invoice"

    def run(self, job: Job) -> StageResult:
        with self.db.connect() as conn:
            invoice = numbering.for_job(conn, job.id)
        if invoice is None:
            return StageResult()
        content = pdf.render(invoice["document"])
        try:
            store.put_pdf(self.s3, self.settings, invoice["s3_key"], content, invoice["number"])
        except (ClientError, BotoCoreError) as exc:
            raise TransientError(f"could not store invoice {invoice['number']}: {exc}") from exc
        stored = InvoiceOutput(invoice["number"], invoice["s3_key"], len(content))
        return StageResult(data=stored, public={"invoice": {"number": stored.number, "s3_key": stored.s3_key}})


@dataclass
class RequestedInvoiceStage:
    """The ``invoice`` stage of a pipeline whose jobs ask for an invoice in their request (``"invoice": true``, the
    payment pipeline): a job that does not ask reads and writes nothing here, and the S3 client is made only for
    one that does (a worker paying without invoices needs no S3)."""

    db: sa.Engine
    s3: Lazy[Any]
    settings: Settings
    name: str = "invoice"

    def run(self, job: Job) -> StageResult:
        if not job.request.get("invoice"):
            return StageResult()
        return InvoiceStage(self.db, self.s3(), self.settings, self.name).run(job)
