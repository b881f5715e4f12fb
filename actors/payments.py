"""``process_payment`` on ``payments.fifo`` (message group: the customer)."""

from __future__ import annotations

from typing import Any

import dramatiq

from engine.runtime.services import services


@dramatiq.actor(queue_name="payments", actor_name="process_payment")
def process_payment(envelope: dict[str, Any]) -> None:
    """Run the payment pipeline for the job this envelope carries."""
    services().run_job("payment", envelope)
