"""Stage ``notify``, the last of the payment, refund and subscription pipelines: the job is done.

Its ``job.succeeded`` event is written to the outbox by the runner in the same transaction as the stages' local
writes (the ledger rows); the relay moves it to the ``notifications`` queue, and the notifier delivers it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult


@dataclass
class NotifyStage:
    name: str = "notify"

    def run(self, job: Job) -> StageResult:
        return StageResult(status="succeeded")
