"""Credit notes (migration ``0016``), mirrored for queries.

A credit note corrects an issued invoice downwards — a refund of the charge it invoiced — and reduces the VAT the
invoice declared by the same amount.  Credit notes are numbered ``CN-{YYYY}-{000001}`` per seller and year from
``credit_note_counters``, gap-free in the same way as invoices (the counter row is incremented, and so locked, in
the transaction that inserts the credit note), in a series of their own so the invoices' series is unchanged.

* ``key`` says what is credited (``refund:{refunds row id}``) and is unique: whoever books a refund first (its
  job, or the ``charge.refunded`` webhook) issues its credit note, the other finds it.
* ``invoice_id`` / ``invoice_number``: the invoice corrected.
* ``net``, ``vat``, ``total``: what is credited (positive minor units of ``currency``), the VAT at the invoice's
  country, rate and scheme.
* ``stored_at``: when its PDF was put in the invoices bucket (null until the ``credit-notes`` task has stored it).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from engine.db.metadata import metadata

credit_note_counters = sa.Table(
    "credit_note_counters",
    metadata,
    sa.Column("seller", sa.Text, primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
    sa.CheckConstraint("last_number >= 1", name="credit_note_counters_positive"),
)

credit_notes = sa.Table(
    "credit_notes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("seller", sa.Text, nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("number", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column(
        "invoice_id", sa.BigInteger, sa.ForeignKey("invoices.id", name="credit_notes_invoice_fkey"), nullable=False
    ),
    sa.Column("invoice_number", sa.Text, nullable=False),
    # The job that issued it (a refund job, or the webhook job that booked a dashboard refund).
    sa.Column("job_id", sa.Text, nullable=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("net", sa.BigInteger, nullable=False),
    sa.Column("vat", sa.BigInteger, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("vat_country", sa.Text, nullable=False),
    sa.Column("vat_rate", sa.Text, nullable=False),
    sa.Column("vat_scheme", sa.Text, nullable=False),
    # Everything the PDF shows, so a re-render is byte-for-byte the same document.
    sa.Column("document", JSONB, nullable=False),
    sa.Column("s3_key", sa.Text, nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("seller", "year", "sequence", name="credit_notes_seller_year_sequence_key"),
    sa.UniqueConstraint("seller", "number", name="credit_notes_seller_number_key"),
    sa.CheckConstraint("net >= 0 AND vat >= 0 AND total = net + vat AND total > 0", name="credit_notes_amounts"),
)
sa.Index("credit_notes_invoice_idx", credit_notes.c.invoice_id)
sa.Index("credit_notes_unstored_idx", credit_notes.c.id, postgresql_where=credit_notes.c.stored_at.is_(None))
