"""POS batch settlement: a CSV batch in S3 → settled rows, ledger postings per terminal and currency, a report.

Stages (``pipelines/settlement/stages.py``): ``ingest`` (streamed, chunked, checkpointed) → ``post`` (ledger) →
``report`` (S3).  ``docs/settlement.md`` describes the flow, the reasons a row is rejected and the figures.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.jobs.pipeline import Pipeline
from pipelines.settlement.stages import DEFAULT_CHUNK_ROWS, IngestStage, PostStage, ReportStage, RowHook

__all__ = ["IngestStage", "PostStage", "ReportStage", "settlement_pipeline"]


def settlement_pipeline(
    db: sa.Engine,
    s3: Any,
    bucket: str,
    fee_bps: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_row: RowHook | None = None,
) -> Pipeline:
    """The explicit tuple of stages.  ``chunk_rows`` is the recovery-point size; ``on_row`` is a test hook."""
    return Pipeline(
        "settlement",
        (
            IngestStage(db, s3, bucket, chunk_rows=chunk_rows, on_row=on_row),
            PostStage(db, fee_bps),
            ReportStage(db, s3, bucket),
        ),
    )
