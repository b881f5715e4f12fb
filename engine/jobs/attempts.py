"""Job attempts, counted by the engine: only a failure of the job's own spends one.

The seed's "dead letter after 3 retries" means three failures *of the job*, not three SQS receives.  A receive is
also spent when a worker dies holding a message, when a message is returned unrun behind a failing one of its
FIFO group, or when Stripe is down; none of those is the job's failure.  So the engine counts failed attempts in
``jobs.failed_attempts`` and dead-letters a job (source ``explicit``) when that count reaches ``max_attempts``;
SQS's RedrivePolicy stays as a safety net at a much higher maxReceiveCount (``PAYMENTS_SQS_MAX_RECEIVE_COUNT``)
for a message that never gets as far as failing (one that kills its worker every time).

* :class:`~engine.errors.DependencyDown` (Stripe's breaker open, or Stripe down as a whole): no attempt; the message
  goes back with a short delay (a :class:`dramatiq.errors.Retry`, which Dramatiq does not log as an error).
* :class:`~engine.errors.PoisonError`: not counted either; the broker dead-letters it at once.
* Anything else: one attempt, committed before the broker sees the failure; the ``max_attempts``-th raises
  :class:`AttemptsExhausted` (a :class:`~engine.broker.errors.DeadLetterRequested`), which carries the cause.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from dramatiq.errors import Retry

from engine.broker.errors import DeadLetterRequested
from engine.db.tables import jobs
from engine.errors import DependencyDown, PoisonError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Jitter added to a :class:`DependencyDown`'s ``retry_after`` so that returned messages do not all come back at
#: the same moment (seconds, drawn uniformly).
PAUSE_JITTER_SECONDS = (1.0, 5.0)


class AttemptsExhausted(DeadLetterRequested):
    """The job failed ``attempts`` times for reasons of its own: dead-letter it now.  ``reason`` (also
    ``__cause__``) is the last failure, which the dead-letter reason row describes; ``stage`` the stage it failed
    in."""

    def __init__(self, job_id: str, attempts: int, cause: BaseException) -> None:
        super().__init__(f"job {job_id} failed {attempts} attempts; last: {type(cause).__name__}: {cause}")
        self.job_id = job_id
        self.attempts = attempts
        self.reason = cause
        self.stage = getattr(cause, "stage", None)


def pause_delay_ms(exc: DependencyDown, rng: random.Random | None = None) -> int:
    """How long a message given back for ``exc`` stays invisible: its ``retry_after`` plus jitter, in ms."""
    low, high = PAUSE_JITTER_SECONDS
    return int(1000 * ((exc.retry_after or 0.0) + (rng or random).uniform(low, high)))


def count_failure(db: sa.Engine, job_id: str) -> int:
    """Add one failed attempt to the job and return the count (committed).  0 when the job row does not exist."""
    with db.begin() as conn:
        count = conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(failed_attempts=jobs.c.failed_attempts + 1)
            .returning(jobs.c.failed_attempts)
        ).scalar()
    return int(count or 0)


def run_counted(db: sa.Engine, job_id: str, run: Callable[[], T], *, max_attempts: int) -> T:
    """``run()``, counting its failure as one of the job's attempts when it is the job's own.

    Raises :class:`dramatiq.errors.Retry` (with a delay) for :class:`DependencyDown`, :class:`AttemptsExhausted`
    when this failure is the job's ``max_attempts``-th, else what ``run`` raised.
    """
    try:
        return run()
    except DependencyDown as exc:
        delay = pause_delay_ms(exc)
        log.info("job %s paused %.1fs, no attempt spent: %s", job_id, delay / 1000, exc, extra={"job_id": job_id})
        raise Retry(f"dependency down: {exc}", delay=delay) from exc
    except (PoisonError, DeadLetterRequested):
        raise
    except Exception as exc:
        attempts = _count_or_none(db, job_id)
        if attempts is not None and attempts >= max_attempts:
            raise AttemptsExhausted(job_id, attempts, exc) from exc
        raise


def _count_or_none(db: sa.Engine, job_id: str) -> int | None:
    try:
        return count_failure(db, job_id)
    except Exception:
        # The database is what failed, most likely: the count is left to SQS's redrive (the safety net).
        log.exception("job %s: could not count its failed attempt", job_id, extra={"job_id": job_id})
        return None
