"""Stage ``handle``: dispatch a Stripe event to its handler.  Every handler is idempotent (row locks, unique rows,
ledger effect keys), so a redelivered event, or one redone after a crash, changes nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult
from pipelines.webhook import charge_refunded, dispute, payment_intent
from pipelines.webhook.context import HandlerContext

Handler = Callable[[HandlerContext, dict[str, Any]], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": payment_intent.handle,
    "payment_intent.payment_failed": payment_intent.handle,
    "charge.refunded": charge_refunded.handle,
    "charge.dispute.created": dispute.handle,
}


@dataclass
class HandleStage:
    context: Callable[[str], HandlerContext]
    name: str = "handle"

    def run(self, job: Job) -> StageResult:
        event = job.request
        handler = HANDLERS.get(str(event.get("type")))
        if handler is None:
            return StageResult(data={"outcome": "ignored", "reason": "event type not handled"})
        data = handler(self.context(job.id), event)
        return StageResult(data=data, public={"webhook": data})
