"""The circuit breaker opens on dependency-wide failure only, and closes after a successful probe."""

from __future__ import annotations

from engine.adapters.circuit_breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_job_specific_500s_never_open_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker("stripe", distinct_jobs=3, clock=clock)
    for _ in range(50):
        breaker.record_failure("job_same", dependency_wide=False, server_error=True)
        breaker.record_failure("job_other", dependency_wide=False, server_error=True)
    assert breaker.state == "closed"


def test_500s_across_distinct_jobs_open_it_and_a_success_in_between_resets() -> None:
    clock = Clock()
    breaker = CircuitBreaker("stripe", distinct_jobs=3, clock=clock)
    breaker.record_failure("a", dependency_wide=False, server_error=True)
    breaker.record_failure("b", dependency_wide=False, server_error=True)
    breaker.record_success()
    breaker.record_failure("c", dependency_wide=False, server_error=True)
    assert breaker.state == "closed"
    breaker.record_failure("d", dependency_wide=False, server_error=True)
    breaker.record_failure("e", dependency_wide=False, server_error=True)
    assert breaker.state == "open" and not breaker.allow()


def test_connection_failures_open_then_half_open_probe_closes() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "stripe", dependency_failures=3, open_seconds=5, clock=clock, on_change=lambda a, b: changes.append((a, b))
    )
    for i in range(3):
        breaker.record_failure(f"j{i}", dependency_wide=True, server_error=False)
    assert breaker.state == "open"
    clock.now += 5
    assert breaker.allow() is True  # the probe
    assert breaker.allow() is False  # only one probe at a time
    breaker.record_success()
    assert breaker.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_reopens_and_window_forgets_old_failures() -> None:
    clock = Clock()
    breaker = CircuitBreaker("stripe", dependency_failures=2, window_seconds=10, open_seconds=1, clock=clock)
    breaker.record_failure("a", dependency_wide=True, server_error=False)
    clock.now += 11
    breaker.record_failure("b", dependency_wide=True, server_error=False)
    assert breaker.state == "closed"
    breaker.record_failure("c", dependency_wide=True, server_error=False)
    assert breaker.state == "open"
    clock.now += 1
    assert breaker.allow()
    breaker.record_failure("d", dependency_wide=True, server_error=False)
    assert breaker.state == "open"
    assert breaker.wait_until_allowed(0) is False


def test_admits_tells_a_consumer_how_much_work_to_take_without_claiming_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("stripe", dependency_failures=1, open_seconds=5, clock=clock)
    assert breaker.admits() == "all"
    breaker.record_failure("a", dependency_wide=True, server_error=False)
    assert breaker.admits() == "none"
    assert breaker.seconds_until_probe() == 5
    clock.now += 3
    assert breaker.seconds_until_probe() == 2
    assert breaker.wait_until_not_open(0) is False
    clock.now += 2
    assert breaker.wait_until_not_open(0) is True  # half-open now; nothing claimed
    assert breaker.admits() == "probe" and breaker.admits() == "probe"
    assert breaker.allow() is True  # the probe goes out
    assert breaker.admits() == "none" and breaker.allow() is False
    breaker.release_probe()  # the call never reached the dependency
    assert breaker.admits() == "probe"
    assert breaker.allow() is True
    breaker.record_success()
    assert breaker.admits() == "all" and breaker.seconds_until_probe() == 0
