"""``process_subscription`` on ``subscriptions.fifo`` (message group: the customer)."""

from __future__ import annotations

from typing import Any

import dramatiq

from engine.runtime.services import services


@dramatiq.actor(queue_name="subscriptions", actor_name="process_subscription")
def process_subscription(envelope: dict[str, Any]) -> None:
    """Run the subscription pipeline (create, change, cancel, payment method, renewal) for this envelope's job."""
    services().run_job("subscription", envelope)
