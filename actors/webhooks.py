"""``process_webhook`` on ``webhooks.fifo`` (message group: the Stripe object id)."""

from __future__ import annotations

from typing import Any

import dramatiq

from engine.runtime.services import services


@dramatiq.actor(queue_name="webhooks", actor_name="process_webhook")
def process_webhook(envelope: dict[str, Any]) -> None:
    """Handle the Stripe event this envelope carries."""
    services().run_job("webhook", envelope)
