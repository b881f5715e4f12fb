"""How many received messages a worker process may hold at once, shared by all its consumers.

A message is *held* from the ReceiveMessage that brought it until it is acked, nacked or given back.  A worker
with ``threads`` threads and a limit of ``threads + margin`` therefore never holds more than its idle threads plus
``margin`` messages waiting for a thread: a message waits at most about one job's duration, its visibility is not
spent in a local buffer, and a SIGKILL strands at most ``margin`` messages that were not running.

A consumer *reserves* slots before each ReceiveMessage (as many as it asks SQS for) and keeps only as many as SQS
returned: receives in flight on several queues can never together overshoot the limit.
"""

from __future__ import annotations

import threading


class Capacity:
    """A counting limit on held messages, thread-safe; one per broker (so one per worker process).

    Raises:
        ValueError: ``limit`` is below 1.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a capacity holds at least one message")
        self.limit = limit
        self._used = 0
        self._cond = threading.Condition()

    def used(self) -> int:
        """Slots held or reserved now."""
        with self._cond:
            return self._used

    def free(self) -> int:
        """Slots neither held nor reserved now."""
        with self._cond:
            return self.limit - self._used

    def reserve(self, most: int, timeout: float) -> int:
        """Reserve up to ``most`` slots, waiting at most ``timeout`` seconds for at least one to be free.

        Returns how many were reserved: between 1 and ``most``, or 0 when none freed within ``timeout``.
        """
        with self._cond:
            if self._used >= self.limit:
                self._cond.wait(timeout=timeout)
            granted = max(0, min(most, self.limit - self._used))
            self._used += granted
            return granted

    def release(self, count: int) -> None:
        """Give back ``count`` slots (messages acked, nacked or returned; reservations SQS did not fill)."""
        if count <= 0:
            return
        with self._cond:
            self._used = max(0, self._used - count)
            self._cond.notify_all()
