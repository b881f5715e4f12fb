"""The scheduler: periodic tasks of the engine, each on its own interval, in one process.

`payments scheduler` runs them forever; `payments scheduler --once` runs each task once and reports.  The tasks
are the engine's own (:data:`ENGINE_TASKS`: DLQ sweep, reconciler, queue gauges, the daily Stripe reconciliation)
and each job kind's (``JobKind.tasks``: the payment kind's Stripe janitor, the subscription kind's renewals).  A
task's parameters name the container's providers and ``now``; the container builds each call.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from config.settings import Settings
from engine.audit.chain import seal_task
from engine.audit.ship import SHIP_INTERVAL_SECONDS, ship_task
from engine.broker.queues import QueueCatalogue
from engine.jobs.kind import JobKind, Task
from engine.ops import reconciler
from engine.runtime.container import Container
from pipelines.registry import JOB_KINDS

log = logging.getLogger(__name__)


def _dlq_sweep(sqs: Any, db: sa.Engine, settings: Settings, queues: QueueCatalogue, now: datetime) -> str:
    from engine.db.dead_letters import SqlDeadLetterSink
    from engine.ops.dlq.sweep import sweep

    count = sweep(sqs, db, SqlDeadLetterSink(db), settings.queue_prefix, queues, now=now)
    return f"{count} dead-lettered message(s) recorded without a worker's reason"


def _queue_gauges(sqs: Any, db: sa.Engine, settings: Settings, queues: QueueCatalogue, now: datetime) -> str:
    """Refresh ``payments_queue_messages`` and ``payments_jobs_stuck`` for the scrape."""
    from engine.broker.queues import queue_depths
    from engine.db.tables import jobs
    from engine.jobs.job import TERMINAL
    from engine.runtime import metrics

    rows = queue_depths(sqs, settings.queue_prefix, queues)
    for row in rows:
        for state in ("visible", "in_flight", "delayed"):
            if row[state] is not None:
                metrics.QUEUE_MESSAGES.labels(row["name"], state).set(row[state])
        if row["dlq"]["visible"] is not None:
            metrics.QUEUE_MESSAGES.labels(row["name"], "dlq").set(row["dlq"]["visible"])
    threshold = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, settings.reconcile.after_seconds)
    with db.connect() as conn:
        stuck = conn.execute(
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(jobs.c.status.not_in(sorted(TERMINAL)), jobs.c.updated_at < threshold)
        ).scalar_one()
    metrics.STUCK_JOBS.set(stuck)
    return f"{len(rows)} queues measured, {stuck} job(s) without progress"


def _stripe_reconcile(db: sa.Engine, stripe_or_none: Any, now: datetime) -> str:
    """The ledger against Stripe, per job, daily (docs/operations.md, "Reconcile with Stripe")."""
    from engine.ops.stripe_reconcile import run_task

    return run_task(db, stripe_or_none, now)


def _idempotency_purge(idempotency: Any, now: datetime) -> str:
    """Delete expired Idempotency-Key rows (the table otherwise grows for ever)."""
    return f"{idempotency.purge_expired()} expired idempotency key(s) deleted"


def _outbox_purge(db: sa.Engine, settings: Settings, now: datetime) -> str:
    """Delete outbox rows relayed longer ago than ``PAYMENTS_OUTBOX_RETENTION_DAYS`` (the table otherwise grows for
    ever: one dispatch row per accepted job, one row per notification)."""
    from engine.db.outbox import purge_relayed

    with db.begin() as conn:
        count = purge_relayed(conn, settings.outbox.retention_days)
    return f"{count} relayed outbox row(s) deleted"


#: The engine's own tasks, run first in every pass.
ENGINE_TASKS: list[Task] = [
    Task("dlq-sweep", 60.0, _dlq_sweep),
    Task("reconciler", 60.0, reconciler.run_task),
    Task("queue-gauges", 15.0, _queue_gauges),
    Task("idempotency-purge", 3600.0, _idempotency_purge),
    Task("outbox-purge", 3600.0, _outbox_purge),
    Task("stripe-reconcile", 86400.0, _stripe_reconcile),
    Task("audit-seal", 5.0, seal_task),
    Task("audit-ship", SHIP_INTERVAL_SECONDS, ship_task),
]


def tasks_of(kinds: tuple[JobKind, ...]) -> list[Task]:
    """Every periodic task, in the order a pass runs them: the engine's, then each kind's in registry order."""
    return ENGINE_TASKS + [task for kind in kinds for task in kind.tasks]


#: The tasks of the registry's job kinds.
TASKS: list[Task] = tasks_of(JOB_KINDS)


def run_once(c: Container, now: datetime | None = None, tasks: list[Task] | None = None) -> dict[str, str]:
    """Run every task of ``c``'s kinds once (a failing task is reported, the others still run)."""
    at = now or c.clock()
    report: dict[str, str] = {}
    from engine.runtime import metrics

    for task in tasks or tasks_of(c.kinds):
        metrics.SCHEDULER_INTERVAL.labels(task.name).set(task.interval_seconds)
        started = time.monotonic()
        try:
            report[task.name] = c.build(task.run, now=at)
        except Exception as exc:  # one task's outage must not stop the others
            log.exception("scheduler task %s failed", task.name)
            report[task.name] = f"failed: {type(exc).__name__}: {exc}"
            metrics.SCHEDULER_RUNS.labels(task.name, "failed").inc()
        else:
            metrics.SCHEDULER_RUNS.labels(task.name, "ok").inc()
            metrics.SCHEDULER_LAST_SUCCESS.labels(task.name).set(time.time())
        finally:
            metrics.SCHEDULER_LAST_RUN_SECONDS.labels(task.name).set(time.monotonic() - started)
    return report


def run_forever(c: Container, stop: threading.Event, tasks: list[Task] | None = None) -> None:
    """Run tasks on their intervals until ``stop`` is set."""
    selected = tasks or tasks_of(c.kinds)
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
