"""Stage ``refund``: one Stripe refund per job, created exactly once.

The idempotency key is ``{job_id}:refund:g{generation}`` and the refund carries ``metadata.job_id`` (which also
tells the ``charge.refunded`` webhook that the engine made it, so it is not booked twice).  After a 5xx or an unknown
outcome the stage first looks the refund up (recorded id, then the PaymentIntent's refunds filtered on
``metadata.job_id``) and only when Stripe has none creates one under the next generation — Stripe saves a 500 under
its key, so the same key would only replay the 500.  The refund id is checkpointed at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import stripe

from engine.adapters.stripe_gateway import StripeGateway
from engine.db.tables_refunds import refunds
from engine.errors import DependencyDown, PoisonError, TransientError, classify_stripe_error
from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult
from pipelines.payment.charge import BREAKER_WAIT_SECONDS, _in_process

Note = Callable[[str, dict[str, Any]], None]

#: Stripe's answers meaning "less is left to refund than asked" (a refund made elsewhere got there first).
EXCEEDS = ("amount_too_large", "charge_already_refunded")


@dataclass
class RefundStage:
    gateway: StripeGateway
    #: Commits ``stage_results["refund_progress"]`` for a job outside a checkpoint (failure paths only).
    note: Note
    breaker_wait_seconds: float = BREAKER_WAIT_SECONDS
    name: str = "refund"

    def run(self, job: Job) -> StageResult:
        if not self.gateway.breaker.wait_until_allowed(self.breaker_wait_seconds):
            raise DependencyDown("Stripe circuit breaker is open")
        decided = job.stage_results["amount"]
        intent = decided.get("payment_intent")
        if not intent:
            return _fail(
                job.id, "payment_not_captured", f"Payment {decided['payment']} has no PaymentIntent to refund."
            )
        progress: dict[str, Any] = dict(job.stage_results.get("refund_progress") or {})
        generation = int(progress.get("generation", 1))
        try:
            refund = None
            if progress.get("uncertain") or progress.get("refund"):
                refund = self.gateway.find_refund(job.id, intent, progress.get("refund"))
                if refund is None:
                    generation += 1
            if refund is None:
                metadata = {**(job.request.get("metadata") or {}), "payment_job_id": str(decided["payment"])}
                refund = _in_process(self.gateway.create_refund)(
                    job.id,
                    payment_intent=intent,
                    amount=int(decided["amount"]),
                    idempotency_key=f"{job.id}:refund:g{generation}",
                    reason=job.request.get("reason"),
                    metadata=metadata,
                )
        except stripe.InvalidRequestError as exc:
            if exc.code in EXCEEDS:
                return _fail(job.id, "refund_exceeds_captured", f"Stripe refused: {exc.user_message or exc}")
            if exc.code == "charge_not_refundable":
                return _fail(job.id, "payment_not_captured", f"Stripe refused: {exc.user_message or exc}")
            return self._error(job, exc, generation)
        except stripe.StripeError as exc:
            return self._error(job, exc, generation)
        data = {"refund": refund.id, "status": refund.status, "generation": generation}
        if refund.status in ("failed", "canceled"):
            return _fail(job.id, "refund_failed", f"Stripe refund {refund.id} {refund.status}.", data)
        # succeeded, or pending (Stripe settles card refunds later; a later failure arrives as refund.failed).
        return StageResult(data=data, public={"stripe": {"refund": refund.id}}, checkpoint=True)

    def _error(self, job: Job, exc: stripe.StripeError, generation: int) -> StageResult:
        failure = classify_stripe_error(exc)
        if failure.kind == "poison":
            raise PoisonError(f"Stripe refused the refund: {exc.user_message or exc}") from exc
        if failure.outcome_unknown:
            self.note(job.id, {"generation": generation, "uncertain": True})
        raise TransientError(
            f"Stripe {type(exc).__name__}: {exc.user_message or exc}",
            http_status=exc.http_status,
            request_id=exc.request_id,
        ) from exc


def _fail(job_id: str, code: str, message: str, data: dict[str, Any] | None = None) -> StageResult:
    """A business failure: the job fails and its reservation stops counting, in the same commit."""

    def release(conn: sa.Connection) -> None:
        conn.execute(
            refunds.update()
            .where(refunds.c.id == job_id, refunds.c.status == "reserved")
            .values(status="failed", updated_at=sa.func.now())
        )

    return StageResult(data=data or {}, status="failed", error={"code": code, "message": message}, write=release)
