"""``process_settlement`` on ``settlements.fifo`` (message group: the uploading client)."""

from __future__ import annotations

from typing import Any

import dramatiq

from engine.runtime.services import services


@dramatiq.actor(queue_name="settlements", actor_name="process_settlement")
def process_settlement(envelope: dict[str, Any]) -> None:
    """Run the settlement pipeline for the job this envelope carries."""
    services().run_job("settlement", envelope)
