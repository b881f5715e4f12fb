"""Stage ``notify``: the refund is done.  Its ``job.succeeded`` event is written to the outbox by the runner in the
same transaction as the ledger rows; the relay moves it to the ``notifications`` queue."""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult


@dataclass
class NotifyStage:
    name: str = "notify"

    def run(self, job: Job) -> StageResult:
        return StageResult(status="succeeded")
