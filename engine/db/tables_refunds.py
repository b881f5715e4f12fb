"""Tables of refunds and incoming Stripe webhooks (migration ``0004``), mirrored for queries.

``refunds`` holds one row per refund of a payment, whoever made it:

* an engine refund (``source = 'engine'``, ``id`` = the refund job's id) is ``held`` while its payment is not yet
  settled, ``released`` when the payment settles, ``reserved`` once its amount and VAT split are decided under the
  payment's row lock, then ``pending`` (booked while Stripe has not settled the refund) or ``succeeded``
  (booked), or ``failed`` (the reservation no longer counts); a ``pending`` refund becomes ``succeeded`` when Stripe
  settles it, or ``reversed`` (its booking reversed in the ledger, it no longer counts) when Stripe says it failed
  (migration ``0009``);
* a refund made outside the engine (the Stripe dashboard, ``source = 'stripe'``, ``id`` = Stripe's refund id)
  is inserted ``succeeded`` (or ``pending``) by the ``charge.refunded`` handler together with its ledger
  transaction, and settles or is reversed the same way.

What a payment has refunded so far is the sum over its ``reserved``, ``pending`` and ``succeeded`` rows: a
reservation counts from the moment it is decided, so two refunds racing can never exceed the captured amount.

``stripe_events`` records every Stripe event id the ingest accepted (unique), so each event is processed once
however often Stripe delivers it.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.db.metadata import metadata

REFUND_STATUSES = ("held", "released", "reserved", "pending", "succeeded", "failed", "reversed")
REFUND_SOURCES = ("engine", "stripe")
#: Statuses whose amount counts against what remains refundable.
COUNTED_STATUSES = ("reserved", "pending", "succeeded")
#: Statuses of a refund booked in the ledger and not reversed.
BOOKED_STATUSES = ("pending", "succeeded")

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("payment_job_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    # Decided under the payment's row lock; null while held.  Minor units of ``currency``.
    sa.Column("amount", sa.BigInteger, nullable=True),
    sa.Column("net", sa.BigInteger, nullable=True),
    sa.Column("vat", sa.BigInteger, nullable=True),
    sa.Column("currency", sa.Text, nullable=True),
    sa.Column("stripe_refund_id", sa.Text, nullable=True, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(f"status IN {REFUND_STATUSES!r}", name="refunds_status_known"),
    sa.CheckConstraint(f"source IN {REFUND_SOURCES!r}", name="refunds_source_known"),
    sa.CheckConstraint(
        "amount IS NULL OR (amount > 0 AND net >= 0 AND vat >= 0 AND net + vat = amount)", name="refunds_amount_split"
    ),
    sa.CheckConstraint("status IN ('held', 'released') OR amount IS NOT NULL", name="refunds_amount_decided"),
)
sa.Index("refunds_payment_idx", refunds.c.payment_job_id)
sa.Index("refunds_held_idx", refunds.c.payment_job_id, postgresql_where=refunds.c.status == "held")

stripe_events = sa.Table(
    "stripe_events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("object_id", sa.Text, nullable=True),
    # The webhook job that processes the event.
    sa.Column("job_id", sa.Text, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
