"""Stripe's request limits, enforced by the sandbox when its knobs say so (``rate_limit_per_account``,
``rate_limit_per_endpoint``: requests per second, 0 = off).

Stripe answers a request over a limit with 429 ``rate_limit`` before the endpoint runs (nothing is saved under an
idempotency key).  The sandbox keeps a token bucket per API key (the account) and one per key and endpoint, each
holding one second's worth and refilled continuously; a request takes a token of both or is refused.  An endpoint
is the method and the path with the object id replaced (``POST /v1/payment_intents/{id}/confirm``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimits", "endpoint_of"]

#: Path segments that name an action of a collection, not an object id.
_COLLECTION_ACTIONS = {"search"}


def endpoint_of(method: str, path: str) -> str:
    """``POST /v1/payment_intents/pi_123/confirm`` → ``POST /v1/payment_intents/{id}/confirm``."""
    segments = path.rstrip("/").split("/")
    if len(segments) > 3 and segments[3] not in _COLLECTION_ACTIONS:
        segments[3] = "{id}"
    return f"{method} {'/'.join(segments)}"


class RateLimits:
    """Token buckets per account and per account and endpoint; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def admit(self, account: str, endpoint: str, per_account: float, per_endpoint: float) -> bool:
        """Whether a request may run now (a token of each limited bucket taken), False when over a limit."""
        now = self._clock()
        wanted = [(f"acct:{account}", per_account), (f"ep:{account}:{endpoint}", per_endpoint)]
        wanted = [(key, rate) for key, rate in wanted if rate > 0]
        with self._lock:
            levels = []
            for key, rate in wanted:
                tokens, at = self._buckets.get(key, (rate, now))
                tokens = min(max(rate, 1.0), tokens + (now - at) * rate)
                levels.append((key, tokens))
            if any(tokens < 1 for _, tokens in levels):
                for key, tokens in levels:
                    self._buckets[key] = (tokens, now)
                return False
            for key, tokens in levels:
                self._buckets[key] = (tokens - 1, now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
