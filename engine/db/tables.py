"""Table definitions (SQLAlchemy Core) of the core: jobs, dead-letter reasons, outbox, idempotency keys, ledger.
Domain objects never import this module; repositories do.

Migrations in ``engine/db/migrations`` are the source of truth for the schema; these definitions mirror them
for queries, and ``tests/integration/db/test_schema.py`` checks the two agree.  The other table modules
(``tables_*.py``) register on the same :data:`~engine.db.metadata.metadata`; :mod:`engine.db.schema` gathers them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from engine.db.metadata import metadata
from engine.jobs.job import STATUSES

# Nullable JSON columns store Python None as SQL NULL (SQLAlchemy's default would store the JSON value null,
# which `||` merges into an array).

JOB_KINDS = ("payment", "refund", "subscription", "settlement", "webhook", "report")
JOB_STATUSES = STATUSES
DEAD_LETTER_SOURCES = ("redrive", "poison", "explicit")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="accepted"),
    # The last completed stage (null before the first): the job's recovery point.
    sa.Column("stage", sa.Text, nullable=True),
    # (client, Idempotency-Key) or an upstream envelope's scope: one job per scope, ever.
    sa.Column("idempotency_scope", sa.Text, nullable=False, unique=True),
    sa.Column("queue", sa.Text, nullable=False),
    sa.Column("group_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=True),
    sa.Column("correlation_id", sa.Text, nullable=True),
    # The merchant (tenant) owning the job (migration 0015): every API query filters on it.
    sa.Column("merchant_id", sa.Text, nullable=False, server_default="default"),
    # The token subject whose request created the job: the one the PaymentIntent's client_secret is shown to.
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("request", JSONB, nullable=False),
    # Results of completed stages, keyed by stage name, persisted with each checkpoint.
    sa.Column("stage_results", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("result", JSONB(none_as_null=True), nullable=True),
    sa.Column("error", JSONB(none_as_null=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # Failed attempts of the job's own (engine/jobs/attempts.py): a receive spent by a crash, a held-back message
    # or a dependency outage is not one.  The job is dead-lettered when it reaches PAYMENTS_RETRY_MAX_ATTEMPTS.
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    # How many times the job was re-sent by replay or the reconciler (suffix of its dedup id).
    sa.Column("enqueue_generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(f"kind IN {JOB_KINDS!r}", name="jobs_kind_known"),
    sa.CheckConstraint(f"status IN {JOB_STATUSES!r}", name="jobs_status_known"),
)
sa.Index("jobs_status_updated_idx", jobs.c.status, jobs.c.updated_at)
sa.Index("jobs_created_idx", jobs.c.created_at.desc(), jobs.c.id.desc())
sa.Index("jobs_customer_idx", jobs.c.customer_id)
sa.Index("jobs_merchant_created_idx", jobs.c.merchant_id, jobs.c.created_at.desc(), jobs.c.id.desc())

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("queue", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("job_id", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=True),
    sa.Column("group_id", sa.Text, nullable=True),
    sa.Column("stage", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_class", sa.Text, nullable=False),
    sa.Column("error_message", sa.Text, nullable=False),
    sa.Column("traceback", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("queue", "message_id", name="dead_letters_queue_message_key"),
    sa.CheckConstraint(f"source IN {DEAD_LETTER_SOURCES!r}", name="dead_letters_source_known"),
)
sa.Index("dead_letters_job_idx", dead_letters.c.job_id)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("job_id", sa.Text, nullable=True),
    sa.Column("event_type", sa.Text, nullable=False),
    # Unique per event so that a redone stage cannot emit the same event twice.
    sa.Column("event_key", sa.Text, nullable=False, unique=True),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("relayed_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index("outbox_unrelayed_idx", outbox.c.id, postgresql_where=outbox.c.relayed_at.is_(None))

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("client", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("job_id", sa.Text, nullable=True),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", JSONB(none_as_null=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("idempotency_keys_expiry_idx", idempotency_keys.c.expires_at)

# --- Ledger (migration 0002) -------------------------------------------------------------------------------------
# Double entry: debits positive, credits negative, every transaction summing to zero per currency.  The database
# enforces that with a deferred constraint trigger and refuses UPDATE/DELETE/TRUNCATE (see the migration); these
# definitions carry only what queries need.  Kinds mirror ``engine.domain.ledger.LEDGER_KINDS``.
LEDGER_KINDS = ("payment", "refund", "subscription", "settlement", "fee", "adjustment")

ledger_transactions = sa.Table(
    "ledger_transactions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("job_id", sa.Text, nullable=True),
    # One ledger transaction per effect (``payment:{job_id}:capture``): a redone stage cannot book twice.
    sa.Column("effect_key", sa.Text, nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(f"kind IN {LEDGER_KINDS!r}", name="ledger_transactions_kind_known"),
    sa.CheckConstraint("effect_key <> ''", name="ledger_transactions_effect_key_not_empty"),
)
sa.Index("ledger_transactions_job_idx", ledger_transactions.c.job_id)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "transaction_id",
        sa.Text,
        sa.ForeignKey("ledger_transactions.id", name="ledger_entries_transaction_fkey"),
        nullable=False,
    ),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    # Minor units, signed: debit > 0, credit < 0, never 0.
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("amount <> 0", name="ledger_entries_amount_not_zero"),
    sa.CheckConstraint("currency ~ '^[a-z]{3}$'", name="ledger_entries_currency_lower"),
    sa.CheckConstraint("account <> ''", name="ledger_entries_account_not_empty"),
)
sa.Index("ledger_entries_transaction_idx", ledger_entries.c.transaction_id)
sa.Index("ledger_entries_account_currency_idx", ledger_entries.c.account, ledger_entries.c.currency)
