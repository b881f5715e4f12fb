"""How the engine handles jobs of kind ``webhook`` (a Stripe event): validation and the pipeline runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import PoisonError
from engine.jobs.pipeline import PipelineRunner

if TYPE_CHECKING:
    from engine.runtime.services import Services


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event as enqueued (``id``, ``type``, ``data.object``); :class:`PoisonError` otherwise."""
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str) or not isinstance(obj, dict):
        raise PoisonError("invalid webhook job: expected a Stripe event with id, type and data.object")
    return data


def runner(services: Services) -> PipelineRunner:
    """The webhook pipeline wired to this process's adapters."""
    from pipelines.webhook import HandleStage, webhook_pipeline
    from pipelines.webhook.context import HandlerContext

    def context(job_id: str) -> HandlerContext:
        return HandlerContext(services.c, services.stripe, job_id)

    return PipelineRunner(services.c.db, webhook_pipeline(HandleStage(context)))
