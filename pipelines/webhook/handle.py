"""Stage ``handle``: dispatch a Stripe event to its handler.  Every handler is idempotent (row locks, unique rows,
ledger effect keys), so a redelivered event, or one redone after a crash, changes nothing twice."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.adapters.stripe_gateway import StripeGateway
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from pipelines.webhook import charge_refunded, dispute, payment_intent, payout, refund_updated
from pipelines.webhook.context import HandlerContext

Handler = Callable[[HandlerContext, dict[str, Any]], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": payment_intent.handle,
    "payment_intent.payment_failed": payment_intent.handle,
    "charge.refunded": charge_refunded.handle,
    # A refund Stripe settles later: pending → succeeded, or failed (its booking is reversed).
    "charge.refund.updated": refund_updated.handle,
    "refund.updated": refund_updated.handle,
    "refund.failed": refund_updated.handle,
    "charge.dispute.created": dispute.handle,
    "charge.dispute.closed": dispute.handle,
    "payout.paid": payout.handle,
    "payout.failed": payout.handle,
}


@dataclass(frozen=True)
class HandleOutput(StageOutput):
    """What the event's handler did: ``outcome`` (``booked``, ``resumed``, ``ignored``…) and its report."""

    STAGE = "handle"

    outcome: str
    report: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, **self.report}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HandleOutput:
        return cls(str(data["outcome"]), {k: v for k, v in data.items() if k != "outcome"})


@dataclass
class HandleStage:
    db: sa.Engine
    #: Sends a resumed payment's message again.
    broker: Any
    stripe: StripeGateway
    name: str = "handle"

    def run(self, job: Job) -> StageResult:
        event = job.request
        handler = HANDLERS.get(str(event.get("type")))
        if handler is None:
            return StageResult(data=HandleOutput("ignored", {"reason": "event type not handled"}))
        report = handler(HandlerContext(self.db, self.broker, self.stripe, job.id), event)
        return StageResult(data=HandleOutput.from_json(report), public={"webhook": report})
