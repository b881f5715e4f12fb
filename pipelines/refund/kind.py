"""How the engine handles jobs of kind ``refund``: request validation and the pipeline runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engine.errors import PoisonError
from engine.jobs.pipeline import PipelineRunner

if TYPE_CHECKING:
    from engine.runtime.services import Services


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued refund, normalised; :class:`PoisonError` when invalid."""
    from pipelines.refund.request import RefundRequest

    try:
        request = RefundRequest.model_validate(data)
    except ValidationError as exc:
        raise PoisonError(f"invalid refund request: {exc.errors()[0]['msg']}") from exc
    return request.model_dump(mode="json", exclude_none=True)


def runner(services: Services) -> PipelineRunner:
    """The refund pipeline wired to this process's adapters (a runner that holds refunds of unsettled payments)."""
    from pipelines.refund import AmountStage, RefundStage, refund_pipeline
    from pipelines.refund.holds import RefundRunner

    db = services.c.db
    return RefundRunner(db, refund_pipeline(AmountStage(db), RefundStage(services.stripe, db)))
