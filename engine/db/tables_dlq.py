"""Tables of the dead-letter operations (migration 0005): the archive that ``payments dlq purge`` writes.

A purged DLQ message is kept here, body, SQS attributes and the reason row as it was, before it is deleted from
SQS, so that nothing an operator removes is lost to later diagnosis.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from engine.db.metadata import metadata

dlq_archive = sa.Table(
    "dlq_archive",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    # The DLQ (prefixed SQS name) the message was removed from, and its MessageId there.
    sa.Column("dlq", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("job_id", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=True),
    sa.Column("group_id", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=False),
    # SQS system and message attributes as received (SentTimestamp, MessageDeduplicationId, dead_letter_reason…).
    sa.Column("attributes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # The dead_letters row at the time (null when no reason had been recorded yet).
    sa.Column("reason", JSONB(none_as_null=True), nullable=True),
    # Why it was removed: purge (an operator's decision) or settled (a replay found the job already finished).
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("dlq", "message_id", name="dlq_archive_dlq_message_key"),
    sa.CheckConstraint("action IN ('purge', 'settled')", name="dlq_archive_action_known"),
)
sa.Index("dlq_archive_job_idx", dlq_archive.c.job_id)
