"""The engine counts a job's failed attempts in ``jobs.failed_attempts`` (engine/jobs/attempts.py): its own
failures count, a dependency outage does not, and the third dead-letters it."""

from __future__ import annotations

import uuid
from typing import NoReturn

import pytest
import sqlalchemy as sa
from dramatiq.errors import Retry

from engine.db import jobs as job_repo
from engine.db.engine import get_engine
from engine.db.tables import jobs
from engine.errors import DependencyDown, TransientError
from engine.jobs.attempts import AttemptsExhausted, count_failure, run_counted
from engine.jobs.job import Job, new_job_id

pytestmark = pytest.mark.integration


@pytest.fixture
def db(database_url: str) -> sa.Engine:
    return get_engine(database_url)


def _job(db: sa.Engine) -> str:
    with db.begin() as conn:
        job = job_repo.insert(
            conn,
            Job(
                id=new_job_id(),
                kind="payment",
                status="accepted",
                stage=None,
                idempotency_scope=f"test:{uuid.uuid4()}",
                queue="payments.fifo",
                group_id="cus_1",
                request={"amount": 1},
            ),
        )
    return job.id


def _failed_attempts(db: sa.Engine, job_id: str) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.select(jobs.c.failed_attempts).where(jobs.c.id == job_id)).scalar_one())


def test_own_failures_count_outages_do_not_and_the_third_dead_letters(db: sa.Engine) -> None:
    job_id = _job(db)

    def stripe_500() -> NoReturn:
        err = TransientError("Stripe APIError: boom", http_status=500)
        err.stage = "charge"  # type: ignore[attr-defined]  # as the runner marks it
        raise err

    def stripe_down() -> NoReturn:
        raise DependencyDown("Stripe circuit breaker is open", retry_after=1.0)

    for expected in (1, 2):
        with pytest.raises(TransientError):
            run_counted(db, job_id, stripe_500, max_attempts=3)
        assert _failed_attempts(db, job_id) == expected
    # Any number of outage pauses in between spends nothing.
    for _ in range(10):
        with pytest.raises(Retry):
            run_counted(db, job_id, stripe_down, max_attempts=3)
    assert _failed_attempts(db, job_id) == 2
    with pytest.raises(AttemptsExhausted) as caught:
        run_counted(db, job_id, stripe_500, max_attempts=3)
    assert caught.value.attempts == 3 and caught.value.stage == "charge"
    assert isinstance(caught.value.reason, TransientError)
    assert _failed_attempts(db, job_id) == 3


def test_counting_a_missing_job_answers_zero(db: sa.Engine) -> None:
    assert count_failure(db, "job_does_not_exist") == 0
