"""Tables of subscriptions, their renewals and invoices (migration ``0006``), mirrored for queries.

* ``subscriptions``: one row per subscription, its plan, status and current period.  ``version`` grows with every
  change so a writer can refuse to apply a decision made on a stale read (optimistic concurrency).
  ``credit_balance`` is net minor units of the plan's currency the customer has in hand (a downgrade's credit;
  negative: an amount too small to charge, carried to the next invoice).
* ``subscription_renewals``: one row per (subscription, period start, attempt); the unique constraint is what
  makes two schedulers, or a restarted one, enqueue each period's renewal (and each dunning retry) once.
* ``invoice_counters`` and ``invoices``: gap-free numbers ``{YYYY}-{000001}`` per seller and year.  The counter
  row is incremented (and so locked) in the same transaction that inserts the invoice, so a rolled-back invoice
  gives its number back.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from engine.db.metadata import metadata

SUBSCRIPTION_STATUSES = ("incomplete", "trialing", "active", "past_due", "canceled")

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    # The merchant (tenant) owning the subscription (migration 0015), its renewals' jobs inherit it.
    sa.Column("merchant_id", sa.Text, nullable=False, server_default="default"),
    # The customer object of the creating request (country, type, VAT id decide each renewal's VAT).
    sa.Column("customer", JSONB, nullable=False),
    sa.Column("plan", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("payment_method", sa.Text, nullable=False),
    sa.Column("billing_cycle_anchor", sa.DateTime(timezone=True), nullable=True),
    sa.Column("period_index", sa.Integer, nullable=False, server_default="0"),
    sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=True),
    sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("trial_end", sa.DateTime(timezone=True), nullable=True),
    sa.Column("credit_balance", sa.BigInteger, nullable=False, server_default="0"),
    # Failed attempts at the current period's renewal (0 when paid); the next retry's due time.
    sa.Column("dunning_attempt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_job_id", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(f"status IN {SUBSCRIPTION_STATUSES!r}", name="subscriptions_status_known"),
)
sa.Index("subscriptions_customer_idx", subscriptions.c.customer_id)
sa.Index("subscriptions_due_idx", subscriptions.c.status, subscriptions.c.current_period_end)

subscription_renewals = sa.Table(
    "subscription_renewals",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "subscription_id",
        sa.Text,
        sa.ForeignKey("subscriptions.id", name="subscription_renewals_subscription_fkey"),
        nullable=False,
    ),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    # 1 = the renewal itself, 2.. = dunning retries.
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("job_id", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("subscription_id", "period_start", "attempt", name="subscription_renewals_period_key"),
    sa.CheckConstraint("attempt >= 1", name="subscription_renewals_attempt_positive"),
)

invoice_counters = sa.Table(
    "invoice_counters",
    metadata,
    sa.Column("seller", sa.Text, primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("last_number", sa.Integer, nullable=False),
    sa.CheckConstraint("last_number >= 1", name="invoice_counters_positive"),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("seller", sa.Text, nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("number", sa.Text, nullable=False),
    # One invoice per job: a redone stage cannot number twice.
    sa.Column("job_id", sa.Text, nullable=False, unique=True),
    sa.Column("subscription_id", sa.Text, nullable=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("net", sa.BigInteger, nullable=False),
    sa.Column("vat", sa.BigInteger, nullable=False),
    sa.Column("total", sa.BigInteger, nullable=False),
    sa.Column("vat_country", sa.Text, nullable=False),
    sa.Column("vat_rate", sa.Text, nullable=False),
    sa.Column("vat_scheme", sa.Text, nullable=False),
    # Everything the PDF shows (seller, customer, lines), so a re-render is byte-for-byte the same document.
    sa.Column("document", JSONB, nullable=False),
    sa.Column("s3_key", sa.Text, nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("seller", "year", "sequence", name="invoices_seller_year_sequence_key"),
    sa.UniqueConstraint("seller", "number", name="invoices_seller_number_key"),
)
sa.Index("invoices_subscription_idx", invoices.c.subscription_id)
