"""The pipeline runner: stages in order after the job's last recovery point, checkpointed with the job.

Rules (after Brandur Leach's "Implementing Stripe-like Idempotency Keys in Postgres"):

* A stage that only computes (fraud score, VAT) is cheap to redo; its result is persisted with the next
  checkpoint (``StageResult.checkpoint = False``), saving a commit per job.
* A stage with an external effect (Stripe) declares ``persist_before = True``: the decisions computed before it
  (fraud verdict, VAT split) are committed before the effect runs, so a redelivery after the effect reuses them
  instead of recomputing them from data that changed meanwhile (a velocity window, an OSS threshold).  The effect
  itself is recoverable from its idempotency key (Stripe replays the answer), so it may ride on the next
  checkpoint; a stage that cannot recover its effect that way checkpoints at once (``checkpoint = True``).
* Every checkpoint is fenced: it applies only while the job is still at the stage this copy read and not terminal
  (:func:`engine.db.jobs.checkpoint`).  Two copies of a job (a visibility expiry, a replay) may run at once; the
  one that loses the race stops quietly (:class:`engine.db.jobs.StaleCopy`) and writes nothing else.
* A stage that writes locally (ledger) hands its writes to the runner (``StageResult.write``), which commits them
  with the next checkpoint in one transaction.
* When a job reaches a status that ends the pipeline, an outbox event ``job.{status}`` with the job's view is
  written in that same transaction; the notifier relays it.

A stage raises to ask for a retry (the broker leaves the message invisible with backoff; the next delivery resumes
after the last checkpoint) and returns a ``status`` to end the job with a business outcome.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.outbox import add_event
from engine.jobs.job import SETTLED, Job
from engine.jobs.output import StageOutput
from engine.runtime import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageResult:
    """What a stage produced.

    ``data`` is the stage's output (a typed :class:`engine.jobs.output.StageOutput`, or a plain dict), kept as JSON
    under ``stage_results[stage]``; ``public`` is merged into the job's API view; ``status``
    (with ``error``) ends the pipeline; ``write`` runs inside the next checkpoint's transaction; ``checkpoint``
    asks for a commit right after this stage.
    """

    data: StageOutput | dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    error: dict[str, Any] | None = None
    write: Callable[[sa.Connection], None] | None = None
    checkpoint: bool = False


class Stage(Protocol):
    """One step of a pipeline.  ``run`` sees the job with every earlier stage's output (:meth:`Job.output`).

    A stage may also have ``persist_before = True`` (read with ``getattr``): what the stages before it computed is
    committed before it runs.
    """

    name: str

    def run(self, job: Job) -> StageResult: ...


@dataclass(frozen=True)
class Pipeline:
    """An explicit, ordered tuple of stages."""

    name: str
    stages: tuple[Stage, ...]

    def after(self, last_completed: str | None) -> tuple[Stage, ...]:
        """The stages still to run after the recovery point ``last_completed``.

        Raises :class:`ValueError` for a stage name this pipeline does not have (a job of another pipeline).
        """
        if last_completed is None:
            return self.stages
        names = [s.name for s in self.stages]
        if last_completed not in names:
            raise ValueError(f"pipeline {self.name} has no stage {last_completed!r}")
        return self.stages[names.index(last_completed) + 1 :]


StageTimer = Callable[[str, str, float], None]


class PipelineRunner:
    """Runs a pipeline for one job at a time; safe to call again for the same job after any crash."""

    def __init__(self, db: sa.Engine, pipeline: Pipeline, on_stage: StageTimer | None = None) -> None:
        self._db = db
        self.pipeline = pipeline
        self._on_stage = on_stage

    def run(self, job_id: str) -> Job:
        """Run the remaining stages of ``job_id`` and return the job as left.

        Raises whatever a stage raises (transient failures: the caller's retry policy applies) and
        :class:`engine.db.jobs.JobNotFound`.
        """
        with self._db.connect() as conn:
            job = job_repo.get(conn, job_id)
        if job.status in SETTLED:
            log.info("job %s already %s; nothing to do", job.id, job.status, extra={"job_id": job.id})
            return job
        remaining = self.pipeline.after(job.stage)
        if not remaining:
            # Every stage was checkpointed but the job did not settle (cannot happen with a final last stage).
            return job
        try:
            return self._run_stages(job, remaining)
        except job_repo.StaleCopy as exc:
            # Another copy of this job moved it on first: this one has nothing to add (its writes rolled back).
            log.info("job %s: %s; this copy stops", job.id, exc, extra={"job_id": job.id})
            metrics.STALE_COPIES.labels(job.kind).inc()
            with self._db.connect() as conn:
                return job_repo.get(conn, job_id)

    def _run_stages(self, job: Job, remaining: tuple[Stage, ...]) -> Job:
        """Run ``remaining`` on ``job``, committing as the rules say.  Raises :class:`engine.db.jobs.StaleCopy`
        when a fenced write finds the job moved on, and whatever a stage raises."""
        pending: dict[str, Any] = {}
        public: dict[str, Any] = {}
        writes: list[Callable[[sa.Connection], None]] = []
        for index, stage in enumerate(remaining):
            if pending and getattr(stage, "persist_before", False):
                # The decisions this effect depends on are made once: commit them before the effect runs.
                done = remaining[index - 1].name
                self._commit(job, done, pending, public, "processing", None, writes, final=False)
                job.stage, job.status = done, "processing"
                pending, public, writes = {}, {}, []
            started = time.perf_counter()
            try:
                result = stage.run(job)
            except Exception as exc:
                # The stage reached, for the dead-letter reason row (the broker reads ``error.stage``).
                with contextlib.suppress(AttributeError, TypeError):
                    exc.stage = stage.name  # type: ignore[attr-defined]
                raise
            elapsed = time.perf_counter() - started
            metrics.STAGE_SECONDS.labels(self.pipeline.name, stage.name).observe(elapsed)
            if self._on_stage:
                self._on_stage(self.pipeline.name, stage.name, elapsed)
            data = _stored(stage.name, result.data)
            pending[stage.name] = data
            public.update(result.public)
            if result.write is not None:
                writes.append(result.write)
            job.stage_results = {**job.stage_results, stage.name: data}
            job.public = {**job.public, **result.public}
            last = index == len(remaining) - 1
            final_status = result.status or ("succeeded" if last else None)
            if result.checkpoint or final_status:
                status = final_status or "processing"
                self._commit(job, stage.name, pending, public, status, result.error, writes, final=bool(final_status))
                job.stage, job.status = stage.name, status
                if result.error:
                    job.error = result.error
                pending, public, writes = {}, {}, []
            if final_status:
                log.info("job %s %s after stage %s", job.id, final_status, stage.name, extra={"job_id": job.id})
                metrics.JOBS.labels(job.kind, final_status).inc()
                amounts = job.public.get("amounts")
                if final_status == "succeeded" and isinstance(amounts, dict) and "total" in amounts:
                    metrics.AMOUNT.labels(amounts.get("currency", "?"), job.kind).inc(int(amounts["total"]))
                return job
        return job  # pragma: no cover - the last stage always settles the job

    def _commit(
        self,
        job: Job,
        stage: str,
        pending: dict[str, Any],
        public: dict[str, Any],
        status: str,
        error: dict[str, Any] | None,
        writes: list[Callable[[sa.Connection], None]],
        *,
        final: bool,
    ) -> None:
        with self._db.begin() as conn:
            # The stage's writes first (a write may read the job row as the last checkpoint left it, as the report's
            # link does); a fence refused below rolls them back with the rest.
            for write in writes:
                write(conn)
            job_repo.checkpoint(
                conn,
                job.id,
                # The stage this copy read, or one it ran since (a stage may checkpoint itself under its row lock,
                # as the settlement's post does); a terminal status is refused either way.
                expected_stage=(job.stage, *pending),
                stage=stage,
                stage_results=pending,
                public=public,
                status=status,
                error=error,
                clear_error=error is None and status in ("processing", "succeeded"),
            )
            if final:
                view = job_repo.get(conn, job.id).view()
                add_event(
                    conn,
                    job_id=job.id,
                    event_type=f"job.{status}",
                    event_key=f"{job.id}:job.{status}",
                    payload=view,
                )


def _stored(stage: str, data: StageOutput | dict[str, Any]) -> dict[str, Any]:
    """A stage's output as JSON.  Raises :class:`TypeError` for an output of another stage (a wiring mistake)."""
    if not isinstance(data, StageOutput):
        return data
    if stage != data.STAGE:
        raise TypeError(f"stage {stage!r} returned the output of stage {data.STAGE!r}")
    return data.to_json()
