"""The scheduler: periodic tasks of the engine, each on its own interval, in one process.

`payments scheduler` runs them forever; `payments scheduler --once` runs each task once and reports.
Pipelines add their tasks (reconciler, renewals, janitor) to :data:`TASKS` as their issues land.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.runtime.container import Container

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """A periodic task: ``run(container, now)`` returns a one-line report of what it did."""

    name: str
    interval_seconds: float
    run: Callable[[Container, datetime], str]


def _lazy(target: str) -> Callable[[Container, datetime], str]:
    """A task function imported on first run (``"module:function"``), so the scheduler starts without importing
    every pipeline."""

    def run(c: Container, now: datetime) -> str:
        module, _, name = target.partition(":")
        result: str = getattr(importlib.import_module(module), name)(c, now)
        return result

    run.__qualname__ = target
    return run


def _dlq_sweep(c: Container, now: datetime) -> str:
    from engine.db.dead_letters import SqlDeadLetterSink
    from engine.ops.dlq.sweep import sweep

    count = sweep(c.sqs, c.db, SqlDeadLetterSink(c.db), c.settings.queue_prefix, now=now)
    return f"{count} dead-lettered message(s) recorded without a worker's reason"


def _queue_gauges(c: Container, now: datetime) -> str:
    """Refresh ``payments_queue_messages`` and ``payments_jobs_stuck`` for the scrape."""
    import sqlalchemy as sa

    from engine.broker.queues import queue_depths
    from engine.db.tables import jobs
    from engine.jobs.job import TERMINAL
    from engine.runtime import metrics

    rows = queue_depths(c.sqs, c.settings.queue_prefix)
    for row in rows:
        for state in ("visible", "in_flight", "delayed"):
            if row[state] is not None:
                metrics.QUEUE_MESSAGES.labels(row["name"], state).set(row[state])
        if row["dlq"]["visible"] is not None:
            metrics.QUEUE_MESSAGES.labels(row["name"], "dlq").set(row["dlq"]["visible"])
    threshold = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, c.settings.reconcile.after_seconds)
    with c.db.connect() as conn:
        stuck = conn.execute(
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.status.not_in(sorted(TERMINAL)), jobs.c.updated_at < threshold)
        ).scalar_one()
    metrics.STUCK_JOBS.set(stuck)
    return f"{len(rows)} queues measured, {stuck} job(s) without progress"


#: Every periodic task, in the order a pass runs them.  A pipeline adds its task with one line.
TASKS: list[Task] = [
    Task("dlq-sweep", 60.0, _dlq_sweep),
    Task("reconciler", 60.0, _lazy("engine.ops.reconciler:run_task")),
    Task("queue-gauges", 15.0, _queue_gauges),
    Task("stripe-janitor", 30.0, _lazy("pipelines.webhook.janitor:run")),
    Task("subscription-renewals", 60.0, _lazy("pipelines.subscription.renewals:run")),
]


def run_once(c: Container, now: datetime | None = None, tasks: list[Task] | None = None) -> dict[str, str]:
    """Run every task once (a failing task is reported, the others still run)."""
    at = now or datetime.now(UTC)
    report: dict[str, str] = {}
    for task in tasks or TASKS:
        try:
            report[task.name] = task.run(c, at)
        except Exception as exc:  # one task's outage must not stop the others
            log.exception("scheduler task %s failed", task.name)
            report[task.name] = f"failed: {type(exc).__name__}: {exc}"
    return report


def run_forever(c: Container, stop: threading.Event, tasks: list[Task] | None = None) -> None:
    """Run tasks on their intervals until ``stop`` is set."""
    selected = tasks or TASKS
    due = {t.name: 0.0 for t in selected}
    while not stop.is_set():
        now = time.monotonic()
        for task in selected:
            if now < due[task.name]:
                continue
            due[task.name] = now + task.interval_seconds
            report = run_once(c, tasks=[task])
            log.info("scheduler %s: %s", task.name, report[task.name])
        stop.wait(max(0.1, min(due.values()) - time.monotonic()))
