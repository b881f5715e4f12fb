"""Delivering job events: a signed POST to the merchant's webhook URL when configured, else a log line.

``Payments-Signature: t={unix time},v1={hex HMAC-SHA256 of "{t}.{body}" with PAYMENTS_MERCHANT_WEBHOOK_SECRET}``
(the same scheme as Stripe's).  Each event is delivered once: its key is marked in Redis after a successful
delivery, and a redelivered message for a marked key is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
import redis

log = logging.getLogger(__name__)
DELIVERED_TTL_SECONDS = 30 * 86400


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Payments-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


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
        """Deliver one event; False when it had been delivered already.  Raises on a failed delivery (retry)."""
        if self.already_delivered(event_key):
            return False
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
        if self._redis is not None:
            try:
                self._redis.set(self._key(event_key), "1", ex=DELIVERED_TTL_SECONDS)
            except redis.RedisError:
                log.warning("could not mark event %s delivered", event_key)
        return True
