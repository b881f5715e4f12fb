"""``process_notification`` on the standard ``notifications`` queue: deliver one job event."""

from __future__ import annotations

from typing import Any

import dramatiq

from engine.runtime.services import services


@dramatiq.actor(queue_name="notifications", actor_name="process_notification")
def process_notification(envelope: dict[str, Any]) -> None:
    """Deliver the event this envelope carries (signed merchant webhook, or a log line)."""
    data = envelope["data"]
    services().notifier.deliver(data["event_type"], data["event_key"], data["object"])
