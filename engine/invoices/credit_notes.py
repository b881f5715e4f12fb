"""Credit notes: a refund of an invoiced charge corrects its invoice, with the VAT reversed in the same proportion.

A credit note is issued in the transaction that books the refund (the refund job's ledger stage, or the
``charge.refunded`` webhook for a refund made in the Stripe dashboard or one the job never booked), once per refund
(unique ``key``: ``refund:{refunds row id}``), so it exists exactly when the refund is booked.  Its number
``CN-{YYYY}-{000001}`` is taken from ``credit_note_counters`` in that transaction, gap-free as invoices' are
(:mod:`engine.invoices.numbering`): a rolled-back booking gives its number back.

Its PDF is stored by the scheduler's ``credit-notes`` task (:func:`store_pending`) after the booking committed —
never before, so an object in the bucket always carries a number that was kept.  Rendering is deterministic (the
document is fixed at issue), so a PDF stored twice is the same bytes under the same key.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.dialects.postgresql import insert

from config.settings import Settings
from engine.db.tables_credit_notes import credit_note_counters, credit_notes
from engine.domain.money import format_amount
from engine.invoices import numbering, pdf, store

log = logging.getLogger(__name__)
#: Credit notes stored per pass of the ``credit-notes`` task (the rest wait for the next pass).
BATCH = 100


def format_number(year: int, sequence: int) -> str:
    """``CN-2026-000042``.  Raises :class:`ValueError` outside 1..999999 (the format's width)."""
    if not 1 <= sequence <= 999_999:
        raise ValueError(f"credit note sequence {sequence} does not fit the CN-{{YYYY}}-{{000001}} format")
    return f"CN-{year:04d}-{sequence:06d}"


def object_key(seller: str, year: int, number: str) -> str:
    """The object key of a credit note's PDF in the invoices bucket."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in seller)
    return f"credit-notes/{safe}/{year}/{number}.pdf"


def refund_key(refund_row_id: str) -> str:
    """The credit note key of a refund (its ``refunds`` row: the refund job's id, or Stripe's refund id)."""
    return f"refund:{refund_row_id}"


def issue(
    conn: sa.Connection,
    *,
    key: str,
    invoice: sa.RowMapping,
    net: int,
    vat: int,
    job_id: str | None,
    reason: str,
    issued_at: datetime | None = None,
) -> sa.RowMapping:
    """Number and store the credit note ``key`` of ``net + vat`` against ``invoice`` in the caller's transaction;
    return its row.  Idempotent per ``key``: an existing credit note is returned and no number is taken.

    Raises :class:`ValueError` when the amounts are negative, zero, or exceed the invoice's.
    """
    existing = conn.execute(sa.select(credit_notes).where(credit_notes.c.key == key)).mappings().one_or_none()
    if existing is not None:
        return existing
    if net < 0 or vat < 0 or net + vat <= 0 or net > int(invoice["net"]) or vat > int(invoice["vat"]):
        raise ValueError(f"credit note {key}: {net} net + {vat} VAT does not fit invoice {invoice['number']}")
    when = issued_at or datetime.now(UTC)
    seller, year = str(invoice["seller"]), when.year
    sequence = conn.execute(
        insert(credit_note_counters)
        .values(seller=seller, year=year, last_number=1)
        .on_conflict_do_update(
            index_elements=["seller", "year"], set_={"last_number": credit_note_counters.c.last_number + 1}
        )
        .returning(credit_note_counters.c.last_number)
    ).scalar_one()
    number = format_number(year, sequence)
    currency = str(invoice["currency"])
    original = dict(invoice["document"])
    document = {
        **{k: original.get(k) for k in ("seller", "customer", "currency", "vat", "subscription", "payment_intent")},
        "title": "Credit note",
        "number": number,
        "issued_at": when.isoformat(),
        "credits": {"number": invoice["number"], "issued_at": original.get("issued_at")},
        "lines": [
            {
                "description": f"{reason} (invoice {invoice['number']}, "
                f"{format_amount(int(invoice['total']), currency)} invoiced)",
                "amount": net,
            }
        ],
        "net": net,
        "vat_amount": vat,
        "total": net + vat,
        "notes": [f"This credit note reduces invoice {invoice['number']} and the VAT it declared."],
    }
    row = (
        conn.execute(
            credit_notes.insert()
            .values(
                seller=seller,
                year=year,
                sequence=sequence,
                number=number,
                key=key,
                invoice_id=invoice["id"],
                invoice_number=invoice["number"],
                job_id=job_id,
                customer_id=invoice["customer_id"],
                currency=currency,
                net=net,
                vat=vat,
                total=net + vat,
                vat_country=invoice["vat_country"],
                vat_rate=invoice["vat_rate"],
                vat_scheme=invoice["vat_scheme"],
                document=document,
                s3_key=object_key(seller, year, number),
                issued_at=when,
            )
            .returning(credit_notes)
        )
        .mappings()
        .one()
    )
    return row


def for_refund(
    conn: sa.Connection, *, charge_job_id: str, refund_row_id: str, net: int, vat: int, job_id: str | None
) -> sa.RowMapping | None:
    """The credit note of refund ``refund_row_id`` of ``charge_job_id``'s charge, issued now if it was not (see
    :func:`issue`); None when the charge was never invoiced (a payment that did not ask for an invoice)."""
    invoice = numbering.for_job(conn, charge_job_id)
    if invoice is None:
        return None
    return issue(
        conn,
        key=refund_key(refund_row_id),
        invoice=invoice,
        net=net,
        vat=vat,
        job_id=job_id,
        reason=f"Refund {refund_row_id}",
    )


def public(row: sa.RowMapping) -> dict[str, Any]:
    """The ``credit_note`` block of a job view."""
    return {"number": row["number"], "invoice": row["invoice_number"], "s3_key": row["s3_key"]}


def store_pending(db: sa.Engine, s3: Any, settings: Settings, limit: int = BATCH) -> str:
    """Render and store the PDFs of credit notes not stored yet (the scheduler's ``credit-notes`` task); report.

    A PDF that cannot be stored now (S3 down) stays pending for the next pass.
    """
    with db.connect() as conn:
        pending = (
            conn.execute(
                sa.select(credit_notes.c.id, credit_notes.c.number, credit_notes.c.s3_key, credit_notes.c.document)
                .where(credit_notes.c.stored_at.is_(None))
                .order_by(credit_notes.c.id)
                .limit(limit)
            )
            .mappings()
            .all()
        )
    stored = failed = 0
    for row in pending:
        try:
            store.put_pdf(s3, settings, row["s3_key"], pdf.render(dict(row["document"])), row["number"])
        except (ClientError, BotoCoreError) as exc:
            failed += 1
            log.warning("credit note %s: PDF not stored yet: %s", row["number"], exc)
            continue
        with db.begin() as conn:
            conn.execute(credit_notes.update().where(credit_notes.c.id == row["id"]).values(stored_at=sa.func.now()))
        stored += 1
    return f"{stored} credit note(s) stored" + (f", {failed} left for the next pass" if failed else "")
