"""Delivering job events: a signed POST to the merchant's webhook URL when configured, else a log line.

``Payments-Signature: t={unix time},v1={hex HMAC-SHA256 of "{t}.{body}" with PAYMENTS_MERCHANT_WEBHOOK_SECRET}``
(the same scheme as Stripe's).  Each event is delivered once: its key is marked in Redis after a successful
delivery, and a redelivered message for a marked key is dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
import redis

from engine.errors import TransientError

log = logging.getLogger(__name__)
DELIVERED_TTL_SECONDS = 30 * 86400
#: Longer than a delivery may take (the HTTP timeout), short enough that a dead worker's claim soon lapses.
CLAIM_SECONDS = 30
CLAIM_POLL_SECONDS = 0.2


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Payments-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


#: Hosts a merchant webhook may reach over plain http: this machine only (the local stack, tests).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def webhook_target_problem(url: str | None, secret: str | None) -> str | None:
    """Why the engine must not start with this merchant webhook configuration, or ``None`` when it may.

    A URL without a secret would send unsigned events the merchant cannot tell from forged ones; plain http would
    send them (and the signature) readable on the way, so it is allowed only to this machine.
    """
    if not url:
        return None
    if not secret:
        return (
            "PAYMENTS_MERCHANT_WEBHOOK_URL is set but PAYMENTS_MERCHANT_WEBHOOK_SECRET is not: "
            "merchant webhooks would go unsigned"
        )
    parsed = httpx.URL(url)
    if parsed.scheme == "https":
        return None
    if parsed.scheme == "http" and parsed.host in LOOPBACK_HOSTS:
        return None
    return "PAYMENTS_MERCHANT_WEBHOOK_URL must be https:// (plain http only to this machine: 127.0.0.1, ::1, localhost)"


class Notifier:
    def __init__(
        self,
        redis_client: redis.Redis | None,
        prefix: str,
        webhook_url: str | None,
        webhook_secret: str | None,
        timeout: float = 10.0,
    ) -> None:
        self._redis = redis_client
        self._prefix = prefix
        self._url = webhook_url
        self._secret = webhook_secret
        self._http = httpx.Client(timeout=timeout) if webhook_url else None

    def _key(self, event_key: str) -> str:
        return f"{self._prefix}notified:{event_key}"

    def already_delivered(self, event_key: str) -> bool:
        if self._redis is None:
            return False
        try:
            return bool(self._redis.exists(self._key(event_key)))
        except redis.RedisError:
            return False

    def deliver(self, event_type: str, event_key: str, obj: dict[str, Any]) -> bool:
        """Deliver one event; False when it had been delivered already.

        Two copies of one event (a relay re-send, an SQS duplicate) handled at the same moment must not both post:
        the first takes a short claim in Redis; the other waits (its message kept invisible by the heartbeat, so no
        receive is burnt) until the first has marked the event delivered, or its claim lapsed because it died.
        Raises :class:`TransientError` if neither happens in time, and whatever a failed delivery raises.
        """
        if self.already_delivered(event_key):
            return False
        deadline = time.monotonic() + CLAIM_SECONDS + 5
        while not self._claim(event_key):
            if self.already_delivered(event_key):
                return False
            if time.monotonic() > deadline:
                raise TransientError(f"event {event_key} is still being delivered by another worker")
            time.sleep(CLAIM_POLL_SECONDS)
        try:
            self._post(event_type, event_key, obj)
        except BaseException:
            self._release(event_key)
            raise
        if self._redis is not None:
            try:
                self._redis.set(self._key(event_key), "1", ex=DELIVERED_TTL_SECONDS)
            except redis.RedisError:
                log.warning("could not mark event %s delivered", event_key)
        return True

    def _claim(self, event_key: str) -> bool:
        if self._redis is None:
            return True
        try:
            return bool(self._redis.set(f"{self._prefix}notifying:{event_key}", "1", nx=True, ex=CLAIM_SECONDS))
        except redis.RedisError:
            return True  # Redis down: deliver (the merchant dedups on Payments-Event-Id) rather than stall.

    def _release(self, event_key: str) -> None:
        if self._redis is not None:
            with contextlib.suppress(redis.RedisError):
                self._redis.delete(f"{self._prefix}notifying:{event_key}")

    def _post(self, event_type: str, event_key: str, obj: dict[str, Any]) -> None:
        event = {"id": event_key, "type": event_type, "created": int(time.time()), "data": {"object": obj}}
        if self._url and self._http is not None:
            body = json.dumps(event, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", "Payments-Event-Id": event_key}
            if self._secret:
                headers["Payments-Signature"] = sign(self._secret, body)
            response = self._http.post(self._url, content=body, headers=headers)
            response.raise_for_status()
        else:
            log.info(
                "event %s for job %s", event_type, obj.get("id"), extra={"event": event_type, "job_id": obj.get("id")}
            )
