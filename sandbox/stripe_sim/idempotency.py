"""Stripe's idempotency keys (https://docs.stripe.com/api/idempotent_requests).

A key is scoped to the API key that sent it.  The first request with a key locks it; when its endpoint has
run, its answer (status, headers, body) is saved and any later request with the same key and the same parameters
gets that answer again.  The same key with other parameters is an ``idempotency_error``; the same key while the
first request is still running is a 409.  If the first request failed validation (the endpoint never ran),
nothing is saved and the key is released.  Saved answers expire after 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sandbox.stripe_sim.clock import Clock

__all__ = ["MAX_KEY_LENGTH", "TTL_SECONDS", "Begin", "IdempotencyStore", "SavedResponse", "fingerprint"]

MAX_KEY_LENGTH = 255
TTL_SECONDS = 24 * 3600


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    """A digest of what makes two requests "the same": method, path and the decoded parameters."""
    canonical = json.dumps([method.upper(), path, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class SavedResponse:
    """An answer stored under a key, replayed byte for byte."""

    status: int
    headers: dict[str, str]
    body: bytes
    request_id: str


class Outcome(Enum):
    NEW = "new"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"


@dataclass
class Begin:
    """What :meth:`IdempotencyStore.begin` decided; ``saved`` is set for a replay."""

    outcome: Outcome
    saved: SavedResponse | None = None


@dataclass
class _Entry:
    fingerprint: str
    created: float
    response: SavedResponse | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class IdempotencyStore:
    """Keys and saved answers, thread-safe; optionally mirrored to a persistence backend.

    ``on_save`` (if set) is called with ``(scope, key, fingerprint, created, response)`` whenever an answer is
    saved, and ``on_forget`` with ``(scope, key)`` when a key is released or expires.
    """

    def __init__(self, clock: Clock, ttl_seconds: float = TTL_SECONDS) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self.on_save: Callable[[str, str, str, float, SavedResponse], None] | None = None
        self.on_forget: Callable[[str, str], None] | None = None

    def begin(self, scope: str, key: str, digest: str) -> Begin:
        """Lock ``key`` for a new request, or say why not.

        NEW: the caller runs the endpoint and must call :meth:`complete` or :meth:`release`.
        REPLAY: ``saved`` is the stored answer.  MISMATCH: other parameters.  IN_FLIGHT: the first request is
        still running.
        """
        now = self._clock.now()
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None and entry.response is not None and now - entry.created >= self._ttl:
                del self._entries[(scope, key)]
                if self.on_forget is not None:
                    self.on_forget(scope, key)
                entry = None
            if entry is None:
                self._entries[(scope, key)] = _Entry(digest, now)
                return Begin(Outcome.NEW)
            if entry.fingerprint != digest:
                return Begin(Outcome.MISMATCH)
            if entry.response is None:
                return Begin(Outcome.IN_FLIGHT)
            return Begin(Outcome.REPLAY, entry.response)

    def complete(self, scope: str, key: str, response: SavedResponse) -> None:
        """Save the answer of the request that holds ``key``."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is None:  # reset() ran while the request was in flight
                return
            entry.response = response
            if self.on_save is not None:
                self.on_save(scope, key, entry.fingerprint, entry.created, response)

    def release(self, scope: str, key: str) -> None:
        """Forget ``key`` without saving (the endpoint never ran: validation failed)."""
        with self._lock:
            entry = self._entries.pop((scope, key), None)
            if entry is not None and self.on_forget is not None:
                self.on_forget(scope, key)

    def load(self, scope: str, key: str, digest: str, created: float, response: SavedResponse) -> None:
        """Restore a saved answer (from the persistence file)."""
        with self._lock:
            self._entries[(scope, key)] = _Entry(digest, created, response)

    def clear(self) -> None:
        """Drop every key."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
