"""Stage ``generate``: compute the report on the reports' database and write its files to the reports bucket,
under a key prefix of this run's own; the checkpoint links that one complete set.

The external effect is the S3 writes.  How it stays exactly-once *as the job sees it* (docs/reports.md, "Report
jobs"):

* Each run writes under ``reports/{type}/{period}/{job}/{run}/`` with a fresh ``run``, all files completed together
  or none (:func:`engine.reports.generate.generate`).  Two runs never write the same key, so a set is never a mix
  of two runs (two snapshots).
* The link is the checkpoint: the stage's ``write`` runs in the runner's checkpoint transaction, locks the job row
  and links this run's set only if no other run has settled the job first.  A run that finds the job settled
  deletes its own set and raises :class:`Superseded`; the redelivery then finds the job settled and does nothing.
* A worker that dies between its S3 writes and the checkpoint leaves an unlinked set; the redelivery writes a new
  one under a new run and links it, and stage ``tidy`` (:class:`TidyStage`) deletes what other runs of the job
  left (sets, unfinished multipart uploads) once the link is committed — never before, so it cannot delete a set
  that is about to be linked.

Nothing is decided before the effect that a redelivery must honour: the files are a function of the ledger
snapshot, and the run that links is the one the job reports.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from config.settings import Settings
from engine.db import jobs as job_repo
from engine.domain.conversion import RateMissing
from engine.errors import TransientError
from engine.jobs.job import SETTLED, Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from engine.reports import store
from engine.reports.database import snapshot
from engine.reports.generate import GeneratedReport, ReportFile, ReportSpec, generate
from engine.runtime import metrics
from pipelines.report.request import ReportRequest

log = logging.getLogger(__name__)

#: Test hook: called with the run's key prefix once every file is in S3, before the checkpoint.
StoredHook = Callable[[str], None]


class Superseded(TransientError):
    """Another run of this report job settled it first; this run's files were deleted.  Transient: the redelivery
    finds the job settled and acknowledges it."""


@dataclass(frozen=True)
class GenerateOutput(StageOutput):
    """The set the job links: the run, its bucket and key prefix, each file (``name``, ``url``, ``content_type``,
    ``rows``), and the report's headline figures."""

    STAGE = "generate"

    run: str
    bucket: str
    prefix: str
    files: tuple[dict[str, Any], ...]
    transactions: int
    preliminary: bool
    agrees_with_ledger: bool
    figures: dict[str, Any]

    def view(self, spec: ReportSpec) -> dict[str, Any]:
        """The job's ``report`` field (``GET /v1/jobs/{id}``)."""
        return {
            **{k: v for k, v in spec.to_json().items() if v is not None},
            "preliminary": self.preliminary,
            "agrees_with_ledger": self.agrees_with_ledger,
            "transactions": self.transactions,
            "location": f"s3://{self.bucket}/{self.prefix}",
            "files": list(self.files),
            **self.figures,
        }


@dataclass(frozen=True)
class TidyOutput(StageOutput):
    """How many objects other runs of the job had left and stage ``tidy`` deleted."""

    STAGE = "tidy"

    removed: int


def spec_of(job: Job, today: date) -> ReportSpec:
    """The report a job asks for.  Raises :class:`engine.reports.generate.ReportRequestError` (its request was
    checked when it was accepted, so only a request edited since can)."""
    return ReportRequest.model_validate(job.request).spec(today)


class GenerateStage:
    """Computes the report on ``reports_db`` (the replica, else the primary) and writes it to the reports bucket
    (module docstring).  Raises :class:`TransientError` when S3 or the database is unreachable (retried) and
    :class:`Superseded`; a missing ECB rate fails the job with ``rate_missing``."""

    name = "generate"

    def __init__(
        self,
        reports_db: sa.Engine,
        s3: Any,
        settings: Settings,
        clock: Callable[[], datetime],
        on_stored: StoredHook | None = None,
    ) -> None:
        """``on_stored`` is a test hook (a crash between the S3 writes and the checkpoint)."""
        self._reports_db, self._s3, self._clock, self._on_stored = reports_db, s3, clock, on_stored
        self._bucket = store.reports_bucket(settings)
        self._seller = settings.seller.country

    def run(self, job: Job) -> StageResult:
        from botocore.exceptions import BotoCoreError, ClientError

        today = self._clock().date()
        spec = spec_of(job, today)
        run = uuid.uuid4().hex[:12]
        prefix = store.run_prefix(spec, job.id, run)
        started = time.perf_counter()
        try:
            with snapshot(self._reports_db) as conn:
                report = generate(
                    conn,
                    spec,
                    seller_country=self._seller,
                    today=today,
                    open_sink=store.s3_sinks(self._s3, self._bucket, prefix),
                )
        except RateMissing as exc:
            _observe(spec, "failed", started)
            store.discard_quietly(self._s3, self._bucket, prefix)
            error = {"code": exc.code, "message": str(exc), "currency": exc.currency, "date": exc.day.isoformat()}
            return StageResult(status="failed", error=error, write=self._settle(job.id, prefix))
        except (BotoCoreError, ClientError, sa.exc.OperationalError) as exc:
            _observe(spec, "error", started)
            # A file closed before the failure would stay behind: this run's set is never linked, so remove it.
            store.discard_quietly(self._s3, self._bucket, prefix)
            raise TransientError(f"report {job.id}: {type(exc).__name__}: {exc}") from exc
        _observe(spec, "succeeded", started, report)
        if self._on_stored is not None:
            self._on_stored(prefix)
        output = GenerateOutput(
            run=run,
            bucket=self._bucket,
            prefix=prefix,
            files=tuple(self._link_of(prefix, f) for f in report.files),
            transactions=report.transactions,
            preliminary=report.preliminary,
            agrees_with_ledger=report.agrees,
            figures=_figures(report),
        )
        log.info("report %s: %d file(s) under s3://%s/%s", job.id, len(report.files), self._bucket, prefix,
                 extra={"job_id": job.id})  # fmt: skip
        return StageResult(
            data=output, public={"report": output.view(spec)}, write=self._settle(job.id, prefix), checkpoint=True
        )

    def _link_of(self, prefix: str, file: ReportFile) -> dict[str, Any]:
        """How the job shows one file: its name, ``s3://`` URL, content type and data rows."""
        url = f"s3://{self._bucket}/{prefix}{file.name}"
        return {"name": file.name, "url": url, "content_type": file.content_type, "rows": file.rows}

    def _settle(self, job_id: str, prefix: str) -> Callable[[sa.Connection], None]:
        """The checkpoint's guard: in the checkpoint's transaction, with the job row locked, let this run settle
        the job only if no other run has; otherwise delete this run's files and raise :class:`Superseded` (the
        transaction, and with it this run's checkpoint, is rolled back)."""

        def guard(conn: sa.Connection) -> None:
            stored = job_repo.get(conn, job_id, for_update=True)
            if stored.stage is not None or stored.status in SETTLED:
                store.discard_quietly(self._s3, self._bucket, prefix)
                raise Superseded(f"report {job_id} was settled by another run ({stored.status}); this run's files "
                                 f"under {prefix} were deleted")  # fmt: skip

        return guard


class TidyStage:
    """Deletes what other runs of the job left in the bucket — a set whose run died before its checkpoint, an
    unfinished multipart upload — keeping the linked set.  Runs after the link is committed; idempotent.  Raises
    :class:`TransientError` when S3 fails (retried)."""

    name = "tidy"

    def __init__(self, s3: Any, clock: Callable[[], datetime]) -> None:
        self._s3, self._clock = s3, clock

    def run(self, job: Job) -> StageResult:
        from botocore.exceptions import BotoCoreError, ClientError

        linked = job.output(GenerateOutput)
        spec = spec_of(job, self._clock().date())
        try:
            removed = store.discard(self._s3, linked.bucket, store.job_prefix(spec, job.id), keep=linked.prefix)
        except (BotoCoreError, ClientError) as exc:
            raise TransientError(f"report {job.id}: could not tidy the bucket: {exc}") from exc
        return StageResult(data=TidyOutput(removed))


def _figures(report: GeneratedReport) -> dict[str, Any]:
    """The headline figures the job shows beside its files: the OSS return's VAT due per state, the revenue
    report's totals per currency, the settlement report's clearing accounts."""
    summary = report.summary
    if report.spec.type == "oss_return":
        return {"total_vat_eur": summary["total_vat_eur"], "by_country": summary["by_country"]}
    if report.spec.type == "revenue":
        return {"totals": summary["totals"]}
    return {"clearing": summary["clearing"]}


def _observe(spec: ReportSpec, outcome: str, started: float, report: GeneratedReport | None = None) -> None:
    metrics.REPORT_SECONDS.labels(spec.type, outcome).observe(time.perf_counter() - started)
    if report is not None:
        metrics.REPORT_ROWS.labels(spec.type).inc(sum(f.rows or 0 for f in report.files))
