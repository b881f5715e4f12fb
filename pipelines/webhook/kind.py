"""The ``webhook`` job kind: one Stripe event, received at ``POST /webhooks/stripe`` and handled once."""

from __future__ import annotations

from typing import Any

from engine.broker.queues import work_queue
from engine.errors import PoisonError
from engine.jobs.kind import JobKind
from pipelines.webhook import routes
from pipelines.webhook.handle import HandleStage


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event as enqueued (``id``, ``type``, ``data.object``); :class:`PoisonError` otherwise."""
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str) or not isinstance(obj, dict):
        raise PoisonError("invalid webhook job: expected a Stripe event with id, type and data.object")
    return data


KIND = JobKind(
    name="webhook",
    description="Handle the Stripe event this envelope carries.",
    # Message group: the Stripe object id, so events about one object are handled in order.
    queue=work_queue("webhooks", "webhook"),
    validate=validate,
    stages=(HandleStage,),
    routes=routes.build_router,
)
