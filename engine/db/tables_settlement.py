"""Tables of POS batch settlement (migration ``0003``), mirrored for queries.

``pos_transactions`` is every POS transaction settled so far, one row per (terminal_id, transaction_id): the
primary key *is* the duplicate check.  A batch claims its rows with ``INSERT … SELECT … ON CONFLICT DO NOTHING``
from a per-chunk staging table, so a transaction settled in an earlier batch (or earlier in the same batch) is never
inserted twice, whichever worker gets there first.  ``job_id`` and ``row_no`` say which batch row settled it.

``settlement_outcomes`` keeps every row of a batch that was *not* settled — ``rejected`` with its reason or
``duplicate`` — keyed by (job_id, row_no), so the full report can be streamed from the database after a crash
without the worker holding anything per row in memory.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.db.metadata import metadata

POS_TYPES = ("sale", "refund", "void")
OUTCOMES = ("rejected", "duplicate")

pos_transactions = sa.Table(
    "pos_transactions",
    metadata,
    sa.Column("terminal_id", sa.Text, primary_key=True),
    sa.Column("transaction_id", sa.Text, primary_key=True),
    sa.Column("job_id", sa.Text, nullable=False),
    sa.Column("row_no", sa.BigInteger, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    # Minor units of ``currency``, always > 0; the type says which way the money goes.
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("card_last4", sa.Text, nullable=False),
    sa.Column("auth_code", sa.Text, nullable=True),
    # The sale a refund or void reverses (same terminal); null for a sale.
    sa.Column("original_transaction_id", sa.Text, nullable=True),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(f"type IN {POS_TYPES!r}", name="pos_transactions_type_known"),
    sa.CheckConstraint("amount > 0", name="pos_transactions_amount_positive"),
    sa.CheckConstraint("currency ~ '^[a-z]{3}$'", name="pos_transactions_currency_lower"),
    sa.CheckConstraint("card_last4 ~ '^[0-9]{4}$'", name="pos_transactions_card_last4_digits"),
    sa.CheckConstraint(
        "(type = 'sale') = (original_transaction_id IS NULL)", name="pos_transactions_original_for_reversals"
    ),
)
# A batch's refunds and voids are re-checked against their sales once the whole batch is in (a refund may come
# before its sale in the file); this partial index finds them without indexing every sale by job.
sa.Index(
    "pos_transactions_job_reversals_idx",
    pos_transactions.c.job_id,
    postgresql_where=pos_transactions.c.type != "sale",
)
# The sum of a sale's refunds and voids across batches is checked at post (migration 0010): the earlier batches'
# refunds and voids of a sale are found by (terminal, original) without indexing the sales.
sa.Index(
    "pos_transactions_original_idx",
    pos_transactions.c.terminal_id,
    pos_transactions.c.original_transaction_id,
    postgresql_where=pos_transactions.c.type != "sale",
)

settlement_outcomes = sa.Table(
    "settlement_outcomes",
    metadata,
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("row_no", sa.BigInteger, primary_key=True),
    sa.Column("terminal_id", sa.Text, nullable=True),
    sa.Column("transaction_id", sa.Text, nullable=True),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.CheckConstraint(f"outcome IN {OUTCOMES!r}", name="settlement_outcomes_outcome_known"),
)
# The job view lists the first 1,000 rejects; a re-uploaded batch has a million duplicates in front of them.
sa.Index(
    "settlement_outcomes_rejected_idx",
    settlement_outcomes.c.job_id,
    settlement_outcomes.c.row_no,
    postgresql_where=settlement_outcomes.c.outcome == "rejected",
)
