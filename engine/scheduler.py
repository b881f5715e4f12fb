"""The scheduler: periodic tasks of the engine, each on its own interval, in one process.

`payments scheduler` runs them forever; `payments scheduler --once` runs each task once and reports.
Pipelines add their tasks (reconciler, renewals, janitor) to :data:`TASKS` as their issues land.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.bootstrap import Container

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """A periodic task: ``run(container, now)`` returns a one-line report of what it did."""

    name: str
    interval_seconds: float
    run: Callable[[Container, datetime], str]


def _dlq_sweep(c: Container, now: datetime) -> str:
    from engine.db.dead_letters import SqlDeadLetterSink
    from engine.dlq_sweep import sweep

    count = sweep(c.sqs, c.db, SqlDeadLetterSink(c.db), c.settings.queue_prefix, now=now)
    return f"{count} dead-lettered message(s) recorded without a worker's reason"


TASKS: list[Task] = [Task("dlq-sweep", 60.0, _dlq_sweep)]


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
