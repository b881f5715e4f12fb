"""A circuit breaker for a dependency (Stripe): opens on dependency-wide failure, never on job-specific failure.

It opens when, within ``window_seconds`` and with no success in between, either ``dependency_failures``
connection-level failures happen (refused connections, timeouts, the sandbox ``down``) or 5xx answers come from at
least ``distinct_jobs`` different jobs.  A payment method that always fails (one job's problem) cannot open it.
After ``open_seconds`` one probe is let through (half-open); its success closes the breaker, its failure re-opens.

Callers ask :meth:`CircuitBreaker.allow` before each call (the gateway does), so while half-open exactly one call
goes out, whichever stage or thread makes it; :meth:`admits` tells a consumer how much work it may take now
(everything, one message for the probe, or nothing) without claiming the probe.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class CircuitBreaker:
    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self,
        name: str,
        *,
        window_seconds: float = 30.0,
        dependency_failures: int = 5,
        distinct_jobs: int = 3,
        open_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.name = name
        self._window = window_seconds
        self._dependency_failures = dependency_failures
        self._distinct_jobs = distinct_jobs
        self._open_seconds = open_seconds
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Condition()
        self._state = self.CLOSED
        self._opened_at = 0.0
        self._probe_out = False
        self._wide: deque[float] = deque()
        self._server: deque[tuple[float, str]] = deque()

    @property
    def state(self) -> str:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def allow(self) -> bool:
        """True when a call may go out now (closed, or the single half-open probe)."""
        return self.claim() is not None

    def claim(self) -> str | None:
        """Claim the right to make one call: ``closed`` (any number may), ``probe`` (this call is the half-open
        probe: make it once, without retries) or None (make none)."""
        with self._lock:
            self._maybe_half_open()
            if self._state == self.CLOSED:
                return self.CLOSED
            if self._state == self.HALF_OPEN and not self._probe_out:
                self._probe_out = True
                return "probe"
            return None

    def admits(self) -> str:
        """How much work may start now, without claiming anything: ``all`` (closed), ``probe`` (half-open and the
        probe not yet out: one job's worth) or ``none`` (open, or the probe is out)."""
        with self._lock:
            self._maybe_half_open()
            if self._state == self.CLOSED:
                return "all"
            if self._state == self.HALF_OPEN and not self._probe_out:
                return "probe"
            return "none"

    def seconds_until_probe(self) -> float:
        """Seconds until an open breaker lets its probe through (0 when it is not open)."""
        with self._lock:
            self._maybe_half_open()
            if self._state != self.OPEN:
                return 0.0
            return max(0.0, self._open_seconds - (self._clock() - self._opened_at))

    def wait_until_not_open(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until the breaker is closed or half-open; claims nothing.  True if so."""
        deadline = self._clock() + timeout
        while True:
            if self.state != self.OPEN:
                return True
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            with self._lock:
                self._lock.wait(min(remaining, 0.5))

    def release_probe(self) -> None:
        """Give the half-open probe back unused (the call it was claimed for raised before reaching the
        dependency, or outside its error taxonomy), so the next caller may probe."""
        with self._lock:
            self._probe_out = False
            self._lock.notify_all()

    def wait_until_allowed(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for :meth:`allow`; True when the call may go out."""
        deadline = self._clock() + timeout
        while True:
            if self.allow():
                return True
            remaining = deadline - self._clock()
            if remaining <= 0:
                return False
            with self._lock:
                self._lock.wait(min(remaining, 0.5))

    def record_success(self) -> None:
        with self._lock:
            self._wide.clear()
            self._server.clear()
            self._probe_out = False
            self._set(self.CLOSED)
            self._lock.notify_all()

    def record_failure(self, job_id: str, *, dependency_wide: bool, server_error: bool) -> None:
        """Count a failed call.  Only dependency-wide failures and 5xx across distinct jobs can open the breaker."""
        now = self._clock()
        with self._lock:
            self._probe_out = False
            if self._state == self.HALF_OPEN and (dependency_wide or server_error):
                self._open(now)
                return
            if dependency_wide:
                self._wide.append(now)
            elif server_error:
                self._server.append((now, job_id))
            self._trim(now)
            jobs = {j for _, j in self._server}
            if len(self._wide) >= self._dependency_failures or len(jobs) >= self._distinct_jobs:
                self._open(now)

    def _trim(self, now: float) -> None:
        while self._wide and now - self._wide[0] > self._window:
            self._wide.popleft()
        while self._server and now - self._server[0][0] > self._window:
            self._server.popleft()

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._wide.clear()
        self._server.clear()
        self._set(self.OPEN)

    def _maybe_half_open(self) -> None:
        if self._state == self.OPEN and self._clock() - self._opened_at >= self._open_seconds:
            self._probe_out = False
            self._set(self.HALF_OPEN)

    def _set(self, state: str) -> None:
        if state != self._state:
            old, self._state = self._state, state
            if self._on_change:
                self._on_change(old, state)
