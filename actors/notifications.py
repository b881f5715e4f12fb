"""``process_notification`` on the standard ``notifications`` queue: deliver one job event."""

from __future__ import annotations

from typing import Any

import dramatiq

from engine.broker.queues import NOTIFICATIONS
from engine.runtime.container import process_container


@dramatiq.actor(queue_name=NOTIFICATIONS.base, actor_name="process_notification")
def process_notification(envelope: dict[str, Any]) -> None:
    """Deliver the event this envelope carries (signed merchant webhook, or a log line)."""
    data = envelope["data"]
    process_container().notifier.deliver(data["event_type"], data["event_key"], data["object"])
