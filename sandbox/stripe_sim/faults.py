"""Knobs: added latency and injected faults, set with ``POST /_sim/config`` (JSON, merged into the current ones).

Rates are fractions 0–1 drawn per request.  The order in which a ``/v1`` request meets them mirrors where each
fault happens at Stripe: ``down`` and ``drop_rate`` (the connection fails; nothing answered), then the request
limits ``rate_limit_per_account`` and ``rate_limit_per_endpoint`` (429 ``rate_limit`` over them, as Stripe answers;
``rate_limits.py``), ``fail_rate_429`` and ``fail_rate_500`` (all answered before the endpoint ran, so never saved
under an idempotency key), then the latency, then the endpoint itself, where ``fail_payment_methods`` and
``decline_payment_methods`` act (a 500 made there is saved under the key, as Stripe does).  ``drop_after_rate``
loses the connection after the endpoint ran: the client cannot know the outcome, which a retry with the same key
then replays.
``pending_refunds`` makes new refunds stay ``pending`` (as card refunds can at Stripe) until
``POST /_sim/refunds/{id}/settle`` says ``succeeded`` or ``failed``.
``drop_in_flight_rate`` loses the connection while the request is still being processed: the key stays locked
(a request with the same key meanwhile answers 409) and the endpoint runs ``in_flight_seconds`` later, its answer
saved under the key; until then no lookup (list, search) can see what it creates.
``search_lag_seconds`` makes the search endpoints eventually consistent, as Stripe's are ("data is searchable in
less than a minute"): an object created less than that many seconds ago is not found by a search (lists see it).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Faults", "KnobError", "Knobs"]


class KnobError(ValueError):
    """A knob value of the wrong type or out of range (answered as 400 by ``/_sim/config``)."""


@dataclass
class Knobs:
    """Every knob with its default (no latency, no faults)."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    latency_distribution: str = "uniform"  # jitter drawn uniform in [0, jitter] or exponential with that mean
    fail_rate_500: float = 0.0
    fail_rate_429: float = 0.0
    should_retry_429: bool | None = True  # Stripe-Should-Retry on injected 429s: true, false, or None = absent
    drop_rate: float = 0.0
    drop_after_rate: float = 0.0  # the endpoint runs (and its answer is saved), then the connection is lost
    drop_in_flight_rate: float = 0.0  # the connection is lost while Stripe still processes the request
    in_flight_seconds: float = 2.0  # how long such a request goes on being processed after the drop
    down: bool = False
    rate_limit_per_account: float = 0.0  # requests/s per API key before 429 rate_limit (0: no limit), as Stripe
    rate_limit_per_endpoint: float = 0.0  # requests/s per API key and endpoint (0: no limit)
    fail_payment_methods: list[str] = field(default_factory=list)
    decline_payment_methods: dict[str, str] = field(default_factory=dict)
    pending_refunds: bool = False  # new refunds stay pending until /_sim/refunds/{id}/settle
    search_lag_seconds: float = 0.0  # objects younger than this are not yet searchable (Stripe's search lags)
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_max_seconds: float = 60.0
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 5.0
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_RATES = {"fail_rate_500", "fail_rate_429", "drop_rate", "drop_after_rate", "drop_in_flight_rate"}
_NON_NEGATIVE = {
    "rate_limit_per_account",
    "rate_limit_per_endpoint",
    "latency_ms",
    "latency_jitter_ms",
    "in_flight_seconds",
    "search_lag_seconds",
    "webhook_retry_base_seconds",
    "webhook_retry_max_seconds",
    "webhook_timeout_seconds",
}


def _coerce(name: str, value: Any) -> Any:
    if name in _RATES or name in _NON_NEGATIVE:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise KnobError(f"{name} must be a number")
        if name in _RATES and not 0.0 <= value <= 1.0:
            raise KnobError(f"{name} is a fraction between 0 and 1")
        if value < 0:
            raise KnobError(f"{name} must not be negative")
        return float(value)
    if name == "latency_distribution":
        if value not in ("uniform", "exponential"):
            raise KnobError("latency_distribution is 'uniform' or 'exponential'")
        return value
    if name in ("down", "pending_refunds"):
        if not isinstance(value, bool):
            raise KnobError(f"{name} must be true or false")
        return value
    if name == "should_retry_429":
        if value is not None and not isinstance(value, bool):
            raise KnobError("should_retry_429 is true, false or null")
        return value
    if name == "fail_payment_methods":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise KnobError("fail_payment_methods is a list of payment method ids")
        return list(value)
    if name == "decline_payment_methods":
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise KnobError("decline_payment_methods maps payment method ids to decline codes")
        return dict(value)
    if name in ("webhook_max_attempts", "seed"):
        if value is None and name == "seed":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name != "seed" else 0):
            raise KnobError(f"{name} must be a positive integer")
        return value
    raise KnobError(f"unknown knob: {name}")


class Faults:
    """The current knobs and the random draws made against them; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.knobs = Knobs()
        self._random = random.Random()

    def merge(self, changes: dict[str, Any]) -> Knobs:
        """Apply ``changes`` on top of the current knobs (all or nothing).

        Raises KnobError for an unknown knob or a bad value.
        """
        names = {f.name for f in fields(Knobs)}
        coerced: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in names:
                raise KnobError(f"unknown knob: {name}")
            coerced[name] = _coerce(name, value)
        with self._lock:
            for name, value in coerced.items():
                setattr(self.knobs, name, value)
            if "seed" in coerced:
                self._random.seed(coerced["seed"])
            return self.knobs

    def reset(self) -> None:
        """Back to the defaults."""
        with self._lock:
            self.knobs = Knobs()
            self._random = random.Random()

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        with self._lock:
            return self._random.random() < rate

    def latency_seconds(self) -> float:
        """The delay to add to this request."""
        k = self.knobs
        delay = k.latency_ms
        if k.latency_jitter_ms > 0:
            with self._lock:
                if k.latency_distribution == "exponential":
                    delay += self._random.expovariate(1.0 / k.latency_jitter_ms)
                else:
                    delay += self._random.uniform(0.0, k.latency_jitter_ms)
        return delay / 1000.0

    def fails(self, *payment_methods: str | None) -> bool:
        """Whether a call involving any of ``payment_methods`` must answer 500."""
        wanted = self.knobs.fail_payment_methods
        return bool(wanted) and any(pm in wanted for pm in payment_methods if pm)

    def forced_decline(self, *payment_methods: str | None) -> str | None:
        """The decline code forced on any of ``payment_methods``, or None."""
        table = self.knobs.decline_payment_methods
        for pm in payment_methods:
            if pm and pm in table:
                return table[pm]
        return None
