"""The audit trail's tables (migration ``0011``), mirrored for queries; the rules are in ``engine/audit/``.

``audit_records`` is append-only (database triggers refuse UPDATE, DELETE and TRUNCATE) and written only through
the ``audit_append(body)`` SQL function, which chains each record to the one before under ``audit_head``'s row
lock.  ``job_id``, ``actor`` and ``action`` are generated from the hashed ``body``.  ``audit_shipments`` lists
the JSON-lines objects shipped to the audit bucket.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.db.metadata import metadata

audit_records = sa.Table(
    "audit_records",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    # Canonical JSON (sorted keys, no spaces, UTF-8): exactly the bytes that are hashed.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("job_id", sa.Text, sa.Computed("(body::jsonb ->> 'job')", persisted=True), nullable=True),
    sa.Column("actor", sa.Text, sa.Computed("(body::jsonb ->> 'actor')", persisted=True), nullable=True),
    sa.Column("action", sa.Text, sa.Computed("(body::jsonb ->> 'action')", persisted=True), nullable=True),
)
sa.Index("audit_records_job_idx", audit_records.c.job_id)
sa.Index("audit_records_action_idx", audit_records.c.action, audit_records.c.seq)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("prev", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    sa.CheckConstraint("id = 1", name="audit_head_single_row"),
)

audit_shipments = sa.Table(
    "audit_shipments",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("first_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    # SHA-256 of the object's bytes as shipped: a later version of the object under the same key is a change.
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("version_id", sa.Text, nullable=True),
    sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("last_seq >= first_seq", name="audit_shipments_range"),
)

# Records of the ingest's hot path, committed with their change and chained by ``audit_seal`` (migration 0012):
# no lock on the request's path.  UPDATE and TRUNCATE are refused; only sealing deletes.
audit_pending = sa.Table(
    "audit_pending",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)
