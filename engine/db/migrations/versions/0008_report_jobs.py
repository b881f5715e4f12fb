"""Report jobs: ``report`` joins the job kinds the ``jobs_kind_known`` check constraint admits.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

The ``report`` kind (``pipelines/report/``) generates a report from the ledger into the reports bucket
(docs/reports.md).  Its jobs need no table of their own: the job row links the report's files.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BEFORE = "('payment', 'refund', 'subscription', 'settlement', 'webhook')"
AFTER = "('payment', 'refund', 'subscription', 'settlement', 'webhook', 'report')"


def upgrade() -> None:
    op.drop_constraint("jobs_kind_known", "jobs", type_="check")
    op.create_check_constraint("jobs_kind_known", "jobs", f"kind IN {AFTER}")


def downgrade() -> None:
    # Report jobs cannot stay behind a constraint that refuses their kind.  Only their rows go: the files stay in
    # the reports bucket, and a report can be generated again from the ledger.
    op.execute("DELETE FROM jobs WHERE kind = 'report'")
    op.drop_constraint("jobs_kind_known", "jobs", type_="check")
    op.create_check_constraint("jobs_kind_known", "jobs", f"kind IN {BEFORE}")
