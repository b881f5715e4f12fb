"""Signed webhook delivery with retries, from background threads.

Each event is POSTed as JSON to every enabled endpoint subscribed to its type, with the header
``Stripe-Signature: t={unix time},v1={hex HMAC-SHA256(secret, "{t}.{payload}")}`` (Stripe's scheme, verifiable by
``stripe.Webhook.construct_event``).  A delivery that does not answer 2xx is retried with exponential backoff
(``webhook_retry_base_seconds`` doubling up to ``webhook_retry_max_seconds``, at most ``webhook_max_attempts``
attempts); each attempt is signed afresh.  Deliveries run on their own threads, so a slow receiver never holds up
an API request.  Pending deliveries live in memory only: a restart forgets them.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from sandbox.stripe_sim.faults import Faults
from sandbox.stripe_sim.store import Store, public

__all__ = ["WebhookDispatcher", "compute_signature", "signature_header"]


def compute_signature(payload: str, secret: str, timestamp: int) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{payload}"`` keyed by ``secret``."""
    signed = f"{timestamp}.{payload}".encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={compute_signature(payload, secret, t)}"


def endpoint_wants(endpoint: dict[str, Any], event_type: str) -> bool:
    """Whether an enabled endpoint is subscribed to ``event_type`` (``*`` means all)."""
    if endpoint.get("status") != "enabled":
        return False
    enabled = endpoint.get("enabled_events") or []
    return "*" in enabled or event_type in enabled


@dataclass
class _Delivery:
    event_id: str
    endpoint_id: str
    payload: str
    attempt: int = 0


class WebhookDispatcher:
    """Queues deliveries and runs them on ``workers`` threads."""

    def __init__(self, store: Store, faults: Faults, workers: int = 2) -> None:
        self._store = store
        self._faults = faults
        self._workers = workers
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._in_progress = 0
        # The attempt log (newest last) for /_sim/webhook_deliveries; bounded so it cannot grow forever.
        self.attempts: deque[dict[str, Any]] = deque(maxlen=10_000)

    def start(self) -> None:
        """Start the delivery threads (idempotent)."""
        if self._threads:
            return
        self._stopping = False
        for i in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"stripe-sim-webhooks-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads; pending deliveries are dropped."""
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def clear(self) -> None:
        """Drop pending deliveries and the attempt log (``/_sim/reset``)."""
        with self._cond:
            self._heap.clear()
            self.attempts.clear()

    def enqueue(self, event: dict[str, Any]) -> int:
        """Schedule ``event`` for every subscribed endpoint; returns how many endpoints will receive it.

        The caller holds the store lock; this only reads endpoints and queues work.
        """
        endpoints = [e for e in self._store.all("webhook_endpoint") if endpoint_wants(e, event["type"])]
        if not endpoints:
            return 0
        payload = json.dumps(public(event))
        now = time.monotonic()
        with self._cond:
            for endpoint in endpoints:
                heapq.heappush(self._heap, (now, next(self._seq), _Delivery(event["id"], endpoint["id"], payload)))
            self._cond.notify(len(endpoints))
        return len(endpoints)

    def idle(self) -> bool:
        """True when nothing is queued or being delivered (used by tests to wait)."""
        with self._cond:
            return not self._heap and self._in_progress == 0

    def _run(self) -> None:
        with httpx.Client() as client:
            while True:
                with self._cond:
                    while not self._stopping:
                        if self._heap and self._heap[0][0] <= time.monotonic():
                            break
                        timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                        self._cond.wait(timeout)
                    if self._stopping:
                        return
                    _, _, delivery = heapq.heappop(self._heap)
                    self._in_progress += 1
                try:
                    self._attempt(client, delivery)
                finally:
                    with self._cond:
                        self._in_progress -= 1

    def _attempt(self, client: httpx.Client, delivery: _Delivery) -> None:
        endpoint = self._store.get("webhook_endpoint", delivery.endpoint_id)
        if endpoint is None or endpoint.get("status") != "enabled":
            return  # deleted or disabled since: Stripe stops delivering to it
        knobs = self._faults.knobs
        if knobs.down:
            # A Stripe that is down sends nothing either; hold the delivery without spending an attempt.
            with self._cond:
                if not self._stopping:
                    heapq.heappush(self._heap, (time.monotonic() + 0.2, next(self._seq), delivery))
            return
        delivery.attempt += 1
        secret = endpoint["_sim"]["secret"]
        header = signature_header(delivery.payload, secret)
        status: int | None = None
        error: str | None = None
        try:
            response = client.post(
                endpoint["url"],
                content=delivery.payload.encode(),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": header,
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                },
                timeout=knobs.webhook_timeout_seconds,
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        if self._store.get("webhook_endpoint", delivery.endpoint_id) is None:
            return  # the sandbox was reset (or the endpoint deleted) while this attempt was in flight: forget it
        self.attempts.append(
            {
                "event": delivery.event_id,
                "endpoint": delivery.endpoint_id,
                "url": endpoint["url"],
                "attempt": delivery.attempt,
                "status": status,
                "error": error,
                "succeeded": ok,
                "at": time.time(),
            }
        )
        if ok:
            with self._store.lock:
                event = self._store.get("event", delivery.event_id)
                if event is not None and event["pending_webhooks"] > 0:
                    event["pending_webhooks"] -= 1
                    self._store.put("event", event)
                    self._store.flush()
            return
        if delivery.attempt >= knobs.webhook_max_attempts:
            return
        delay = min(knobs.webhook_retry_base_seconds * 2 ** (delivery.attempt - 1), knobs.webhook_retry_max_seconds)
        with self._cond:
            if not self._stopping:
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), delivery))
                self._cond.notify()
