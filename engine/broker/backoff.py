"""Retry backoff: exponential with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter")."""

from __future__ import annotations

import math
import random

#: SQS caps a message's visibility at 12 hours.
MAX_VISIBILITY_SECONDS = 43200


def backoff_seconds(receive_count: int, *, base: float, maximum: float, rng: random.Random | None = None) -> float:
    """A random delay in ``[0, min(maximum, base * 2**(receive_count - 1))]``.

    ``receive_count`` is SQS's ApproximateReceiveCount of the failed receive (1 for the first attempt).

    Raises:
        ValueError: ``receive_count`` < 1 or a negative ``base``/``maximum``.
    """
    if receive_count < 1:
        raise ValueError("receive_count starts at 1")
    if base < 0 or maximum < 0:
        raise ValueError("backoff base and maximum must be >= 0")
    # Cap the exponent so a huge receive count cannot overflow the float.
    ceiling = min(maximum, base * 2 ** min(receive_count - 1, 62))
    return (rng or random).uniform(0, ceiling)


def visibility_timeout_for(delay: float) -> int:
    """The integer VisibilityTimeout SQS accepts for a backoff ``delay`` (rounded up, capped at 12 h)."""
    # Rounding up keeps a tiny positive backoff from becoming "retry immediately".
    return max(0, min(MAX_VISIBILITY_SECONDS, math.ceil(delay)))
