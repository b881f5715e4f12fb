from __future__ import annotations

import random

import pytest

from engine.broker.backoff import backoff_seconds, visibility_timeout_for


@pytest.mark.parametrize(("count", "ceiling"), [(1, 5), (2, 10), (3, 20), (7, 300), (60, 300), (10_000, 300)])
def test_full_jitter_stays_within_the_exponential_ceiling(count: int, ceiling: float) -> None:
    rng = random.Random(7)
    samples = [backoff_seconds(count, base=5, maximum=300, rng=rng) for _ in range(2000)]
    assert min(samples) >= 0 and max(samples) <= ceiling
    # Full jitter spreads over the whole range, not just near the ceiling.
    assert min(samples) < ceiling * 0.05 and max(samples) > ceiling * 0.95


def test_zero_base_means_no_wait() -> None:
    assert backoff_seconds(3, base=0, maximum=300) == 0


def test_receive_count_starts_at_one() -> None:
    with pytest.raises(ValueError):
        backoff_seconds(0, base=5, maximum=300)


@pytest.mark.parametrize(("delay", "seconds"), [(0, 0), (0.01, 1), (1.0, 1), (1.2, 2), (10**9, 43200)])
def test_visibility_timeout_rounds_up_and_caps_at_twelve_hours(delay: float, seconds: int) -> None:
    assert visibility_timeout_for(delay) == seconds
