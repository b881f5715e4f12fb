"""Audit trail: hash-chained, append-only ``audit_records``, the chain's head, and the shipments to S3.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

Every operation that changes money or state appends one record in the transaction of the change
(``engine/audit/``, docs/audit.md).  A record's ``hash`` is SHA-256 over ``seq``, the previous record's hash and
the record's canonical JSON ``body``; ``audit_append(body)`` computes it in the database under the row lock of
the single-row ``audit_head``, so appends are serialised in commit order and cost one statement.  The records
refuse UPDATE, DELETE and TRUNCATE (the ledger's habit, migration 0002).  ``job_id``, ``actor`` and ``action``
are generated from the body: they cannot disagree with what is hashed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

GENESIS = "0" * 64

# One UPDATE takes the head's row lock (held to COMMIT: the next append waits, then reads this one's hash) and
# computes the new hash from the old one; the RHS of SET sees the old row, so ``prev = hash`` keeps the old hash.
APPEND_FUNCTION = """
CREATE FUNCTION audit_append(p_body text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_seq bigint;
    prev_hash text;
    new_hash text;
BEGIN
    UPDATE audit_head
       SET seq = seq + 1,
           prev = hash,
           hash = encode(sha256(convert_to((seq + 1)::text || E'\\n' || hash || E'\\n' || p_body, 'UTF8')), 'hex')
     WHERE id = 1
    RETURNING seq, prev, hash INTO new_seq, prev_hash, new_hash;
    INSERT INTO audit_records (seq, prev_hash, hash, body) VALUES (new_seq, prev_hash, new_hash, p_body);
    RETURN new_seq;
END
$$;
"""

REFUSE_FUNCTION = """
CREATE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME;
END
$$;
"""

TRIGGERS = [
    """
    CREATE TRIGGER audit_records_append_only
    BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()
    """,
    """
    CREATE TRIGGER audit_records_no_truncate
    BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()
    """,
]


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, sa.Computed("(body::jsonb ->> 'job')", persisted=True), nullable=True),
        sa.Column("actor", sa.Text, sa.Computed("(body::jsonb ->> 'actor')", persisted=True), nullable=True),
        sa.Column("action", sa.Text, sa.Computed("(body::jsonb ->> 'action')", persisted=True), nullable=True),
    )
    op.create_index("audit_records_job_idx", "audit_records", ["job_id"])
    op.create_index("audit_records_action_idx", "audit_records", ["action", "seq"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("prev", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.CheckConstraint("id = 1", name="audit_head_single_row"),
    )
    op.execute(f"INSERT INTO audit_head (id, seq, prev, hash) VALUES (1, 0, '{GENESIS}', '{GENESIS}')")
    op.create_table(
        "audit_shipments",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("first_seq", sa.BigInteger, nullable=False, unique=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("version_id", sa.Text, nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("last_seq >= first_seq", name="audit_shipments_range"),
    )
    for ddl in (APPEND_FUNCTION, REFUSE_FUNCTION, *TRIGGERS):
        op.execute(ddl)


def downgrade() -> None:
    op.drop_table("audit_shipments")
    op.drop_table("audit_head")
    op.drop_table("audit_records")
    op.execute("DROP FUNCTION audit_refuse_change()")
    op.execute("DROP FUNCTION audit_append(text)")
