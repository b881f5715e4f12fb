"""``process_refund`` on ``refunds.fifo`` (message group: the customer)."""

from __future__ import annotations

from typing import Any

import dramatiq

from engine.runtime.services import services


@dramatiq.actor(queue_name="refunds", actor_name="process_refund")
def process_refund(envelope: dict[str, Any]) -> None:
    """Run the refund pipeline for the job this envelope carries (or hold it until its payment settles)."""
    services().run_job("refund", envelope)
