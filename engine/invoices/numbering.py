"""Gap-free invoice numbers ``{YYYY}-{000001}`` per seller and year.

The number is taken from ``invoice_counters`` with an upsert that increments the seller's row for the year.  The
upsert locks that row until the caller's transaction ends, and the invoice row is inserted in the same transaction:
if anything later in it fails, the increment rolls back with the invoice, so no number is ever skipped.  Two
invoices of one seller and year are therefore numbered one after the other (the lock serialises them), which is
the price of "gap-free"; it is held only for the rest of one short transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.tables_subscriptions import invoice_counters, invoices


def format_number(year: int, sequence: int) -> str:
    """``2026-000042``.  Raises :class:`ValueError` outside 1..999999 (the format's width)."""
    if not 1 <= sequence <= 999_999:
        raise ValueError(f"invoice sequence {sequence} does not fit the {{YYYY}}-{{000001}} format")
    return f"{year:04d}-{sequence:06d}"


def invoice_key(seller: str, year: int, number: str) -> str:
    """The object key of an invoice's PDF in the invoices bucket."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in seller)
    return f"invoices/{safe}/{year}/{number}.pdf"


def issue(
    conn: sa.Connection,
    *,
    seller: str,
    issued_at: datetime,
    job_id: str,
    subscription_id: str | None,
    customer_id: str,
    currency: str,
    net: int,
    vat: int,
    vat_country: str,
    vat_rate: str,
    vat_scheme: str,
    document: dict[str, Any],
) -> sa.RowMapping:
    """Number and store the invoice of ``job_id`` inside the caller's transaction; return its row.

    Idempotent per job: when the job has an invoice already, that row is returned and no number is taken.
    ``document`` gets the ``number`` and ``issued_at`` it was given.
    """
    existing = conn.execute(sa.select(invoices).where(invoices.c.job_id == job_id)).mappings().one_or_none()
    if existing is not None:
        return existing
    year = issued_at.year
    sequence = conn.execute(
        insert(invoice_counters)
        .values(seller=seller, year=year, last_number=1)
        .on_conflict_do_update(
            index_elements=["seller", "year"],
            set_={"last_number": invoice_counters.c.last_number + 1},
        )
        .returning(invoice_counters.c.last_number)
    ).scalar_one()
    number = format_number(year, sequence)
    doc = {**document, "number": number, "issued_at": issued_at.isoformat()}
    return (
        conn.execute(
            invoices.insert()
            .values(
                seller=seller,
                year=year,
                sequence=sequence,
                number=number,
                job_id=job_id,
                subscription_id=subscription_id,
                customer_id=customer_id,
                currency=currency,
                net=net,
                vat=vat,
                total=net + vat,
                vat_country=vat_country,
                vat_rate=vat_rate,
                vat_scheme=vat_scheme,
                document=doc,
                s3_key=invoice_key(seller, year, number),
                issued_at=issued_at,
            )
            .returning(invoices)
        )
        .mappings()
        .one()
    )


def for_job(conn: sa.Connection, job_id: str) -> sa.RowMapping | None:
    """The invoice of ``job_id``, if it has one."""
    return conn.execute(sa.select(invoices).where(invoices.c.job_id == job_id)).mappings().one_or_none()


def last_of_subscription(conn: sa.Connection, subscription_id: str) -> sa.RowMapping | None:
    """The subscription's latest invoice, or None: what a downgrade's credit note credits."""
    return (
        conn.execute(
            sa.select(invoices)
            .where(invoices.c.subscription_id == subscription_id)
            .order_by(invoices.c.issued_at.desc(), invoices.c.id.desc())
            .limit(1)
        )
        .mappings()
        .one_or_none()
    )
