"""engine/broker/capacity.py: reservations never overshoot the limit, and a release wakes a waiting reserver."""

from __future__ import annotations

import threading
import time

import pytest

from engine.broker.capacity import Capacity


def test_a_reservation_gets_at_most_the_free_slots() -> None:
    cap = Capacity(5)
    assert cap.reserve(10, timeout=0) == 5
    assert cap.reserve(1, timeout=0) == 0
    cap.release(2)
    assert cap.free() == 2
    assert cap.reserve(10, timeout=0) == 2
    assert cap.used() == 5


def test_a_release_wakes_a_reserver_waiting_for_a_slot() -> None:
    cap = Capacity(1)
    assert cap.reserve(1, timeout=0) == 1
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(cap.reserve(10, timeout=5)))
    waiter.start()
    time.sleep(0.1)
    cap.release(1)
    waiter.join(2)
    assert got == [1]


def test_releasing_more_than_used_never_goes_below_zero_and_a_limit_below_one_is_refused() -> None:
    cap = Capacity(2)
    cap.release(5)
    assert cap.free() == 2
    with pytest.raises(ValueError):
        Capacity(0)
