"""The in-memory sliding-window velocity counter (engine.adapters.velocity.MemoryVelocityCounter)."""

from __future__ import annotations

import pytest

from engine.adapters.velocity import MemoryVelocityCounter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_counts_within_a_sliding_window() -> None:
    clock = Clock()
    counter = MemoryVelocityCounter(clock)
    assert [counter.hit("k", 60) for _ in range(3)] == [1, 2, 3]
    clock.now = 30
    assert counter.hit("k", 60) == 4
    clock.now = 60  # the three events at t=0 are now exactly one window old: out
    assert counter.hit("k", 60) == 2
    clock.now = 200
    assert counter.hit("k", 60) == 1
    assert counter.hit("other", 60) == 1


def test_same_member_counts_once() -> None:
    counter = MemoryVelocityCounter(Clock())
    assert counter.hit("k", 60, member="job-1") == 1
    assert counter.hit("k", 60, member="job-1") == 1
    assert counter.hit("k", 60, member="job-2") == 2


@pytest.mark.parametrize("window", [0, -1, True, 1.5])
def test_window_must_be_a_positive_int(window: object) -> None:
    with pytest.raises(ValueError):
        MemoryVelocityCounter().hit("k", window)  # type: ignore[arg-type]
