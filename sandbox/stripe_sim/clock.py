"""A wall clock that tests can move forward (idempotency key expiry, webhook timestamps)."""

from __future__ import annotations

import threading
import time


class Clock:
    """``now()`` is the real time plus an offset that :meth:`advance` grows; thread-safe."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch, shifted by every :meth:`advance` so far."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never backward: a negative value raises ValueError)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = 0.0
