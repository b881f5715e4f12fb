"""Which failures spend one of a job's attempts (engine/jobs/attempts.py): the parts that need no database.

Counting itself (the database) is tested in tests/integration/pipeline/test_attempts.py.
"""

from __future__ import annotations

import random
from typing import Any, NoReturn

import pytest
from dramatiq.errors import Retry

from engine.broker.errors import DeadLetterRequested
from engine.errors import DependencyDown, KeyStillInFlight, PoisonError
from engine.jobs.attempts import AttemptsExhausted, pause_delay_ms, run_counted


class NoDatabase:
    """Fails the test if anything tries to count an attempt."""

    def begin(self) -> Any:
        raise AssertionError("no attempt may be counted")


def raising(exc: BaseException) -> Any:
    def run() -> NoReturn:
        raise exc

    return run


def test_dependency_down_spends_no_attempt_and_comes_back_after_the_breaker_opens_again() -> None:
    down = DependencyDown("Stripe circuit breaker is open", retry_after=4.0)
    with pytest.raises(Retry) as caught:
        run_counted(NoDatabase(), "job_1", raising(down), max_attempts=3)  # type: ignore[arg-type]
    assert caught.value.__cause__ is down
    assert caught.value.delay is not None and 5_000 <= caught.value.delay <= 9_000


def test_a_key_still_in_flight_at_stripe_spends_no_attempt() -> None:
    # Stripe answers 409 while it still processes the first request with the key: not the job's failure.
    in_flight = KeyStillInFlight("another in-progress request uses this key", retry_after=2.0, http_status=409)
    with pytest.raises(Retry) as caught:
        run_counted(NoDatabase(), "job_1", raising(in_flight), max_attempts=3)  # type: ignore[arg-type]
    assert caught.value.__cause__ is in_flight


def test_poison_and_explicit_dead_letters_are_not_counted() -> None:
    for exc in (PoisonError("bad request"), DeadLetterRequested("now")):
        with pytest.raises(type(exc)):
            run_counted(NoDatabase(), "job_1", raising(exc), max_attempts=3)  # type: ignore[arg-type]


def test_success_passes_through() -> None:
    assert run_counted(NoDatabase(), "job_1", lambda: 42, max_attempts=3) == 42  # type: ignore[arg-type]


def test_pause_delay_is_retry_after_plus_jitter() -> None:
    rng = random.Random(1)
    delays = [pause_delay_ms(DependencyDown("down", retry_after=None), rng) for _ in range(200)]
    assert all(1_000 <= d <= 5_000 for d in delays)


def test_attempts_exhausted_is_an_explicit_dead_letter_described_by_its_cause() -> None:
    cause = RuntimeError("boom")
    cause.stage = "charge"  # type: ignore[attr-defined]
    exhausted = AttemptsExhausted("job_1", 3, cause)
    assert isinstance(exhausted, DeadLetterRequested)
    assert (exhausted.attempts, exhausted.reason, exhausted.stage) == (3, cause, "charge")
