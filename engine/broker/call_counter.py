"""Count SQS API calls per action with a botocore event hook (for benchmarks, tests and metrics)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class CallCounter:
    """Counts every API call a boto3 client makes, by operation name (``SendMessageBatch``, …).

    Attach with :meth:`attach`; the hook runs before each call, retries by botocore included as one call each
    is not guaranteed (botocore retries below this hook), so the figures are "calls the code asked for".
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attach(self, client: Any, service: str = "sqs") -> CallCounter:
        """Register on ``client``'s ``before-call.{service}.*`` event; returns self."""
        client.meta.events.register(f"before-call.{service}.*", self._on_call)
        return self

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._counts[model.name] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far, by operation."""
        with self._lock:
            return dict(self._counts)

    def total(self, *operations: str) -> int:
        """Sum of the counts of ``operations`` (all operations when none is given)."""
        with self._lock:
            if not operations:
                return sum(self._counts.values())
            return sum(self._counts[op] for op in operations)

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._counts.clear()
