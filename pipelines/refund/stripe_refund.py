"""Stage ``refund``: one Stripe refund per job, created exactly once.

The idempotency key is ``{job_id}:refund:g{generation}`` and the refund carries ``metadata.job_id`` (which also
lets the ``charge.refunded`` webhook book it if this job never does).  Every delivery looks Stripe up first (the
recorded id, else every page of the PaymentIntent's refunds filtered on ``metadata.job_id``) and creates only when
Stripe has none: a worker killed between the create and the checkpoint, a dead-letter replay after Stripe's 24-hour
key window, or a second copy of the job running at once would otherwise refund twice.  After a timeout or a first
5xx the next attempt repeats the same key (Stripe replays its answer, or answers 409 while the first request is
still being processed); only when Stripe replays a saved 5xx under the key and a lookup finds no refund is one
created under the next generation — the charge's rule (pipelines/payment/charge.py).  A refund found or replayed
must carry the job's amount and currency; one that does not is an incident (dead letter), never a reason to refund
again.  The refund id is checkpointed at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from stripe import APIError, InvalidRequestError, StripeError

from engine.adapters.stripe_gateway import StripeGateway
from engine.db.tables_refunds import refunds
from engine.errors import PoisonError
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from engine.jobs.stripe_effect import BREAKER_WAIT_SECONDS, StripeEffect, replayed, retry_in_process
from pipelines.refund.amount import AmountOutput

#: Stripe's answers meaning "less is left to refund than asked" (a refund made elsewhere got there first).
EXCEEDS = ("amount_too_large", "charge_already_refunded")


@dataclass(frozen=True)
class RefundOutput(StageOutput):
    """The Stripe refund the job made, its status and the key generation that made it."""

    STAGE = "refund"

    refund: str
    status: str
    generation: int


@dataclass
class RefundStage:
    stripe: StripeGateway
    db: sa.Engine
    breaker_wait_seconds: float = BREAKER_WAIT_SECONDS
    name: str = "refund"

    def __post_init__(self) -> None:
        self._effect = StripeEffect(
            self.stripe, self.db, "refund_progress", "refund", "refund", self.breaker_wait_seconds
        )

    def run(self, job: Job) -> StageResult:
        progress = self._effect.begin(job)
        decided = job.output(AmountOutput)
        intent = decided.payment_intent
        if not intent:
            return _fail(job.id, "payment_not_captured", f"Payment {decided.payment} has no PaymentIntent to refund.")
        generation = progress.generation
        try:
            # Look first, on every delivery: only Stripe knows about a refund made just before a crash.
            refund = self.stripe.find_refund(job.id, intent, progress.object_id)
            if refund is None:
                refund, generation = self._create(job, decided, generation)
        except InvalidRequestError as exc:
            if exc.code in EXCEEDS:
                return _fail(job.id, "refund_exceeds_captured", f"Stripe refused: {exc.user_message or exc}")
            if exc.code == "charge_not_refundable":
                return _fail(job.id, "payment_not_captured", f"Stripe refused: {exc.user_message or exc}")
            self._effect.failed(job, exc, getattr(exc, "generation", generation))
        except StripeError as exc:
            self._effect.failed(job, exc, getattr(exc, "generation", generation))
        _check_matches(job.id, refund, decided)
        data = RefundOutput(refund.id, refund.status, generation)
        if refund.status in ("failed", "canceled"):
            return _fail(job.id, "refund_failed", f"Stripe refund {refund.id} {refund.status}.", data)
        # succeeded, or pending (Stripe settles card refunds later; a later failure arrives as refund.failed).
        return StageResult(data=data, public={"stripe": {"refund": refund.id}}, checkpoint=True)

    def _create(self, job: Job, decided: AmountOutput, generation: int) -> tuple[Any, int]:
        """Refund under ``generation``'s key; when Stripe replays a saved 5xx for that key, the refund a lookup finds,
        else a new one under the next generation.  Returns the refund and the generation that made it; raises the
        SDK's errors (a timeout or a first 5xx: the next delivery repeats the same key)."""
        try:
            return self._create_under(job, decided, generation), generation
        except APIError as exc:
            if not (replayed(exc) and (exc.http_status or 500) >= 500):
                raise
        # The key is spent (Stripe would replay that 5xx for a day); a new key only when Stripe has no refund.
        found = self.stripe.find_refund(job.id, str(decided.payment_intent))
        if found is not None:
            return found, generation
        return self._create_under(job, decided, generation + 1), generation + 1

    def _create_under(self, job: Job, decided: AmountOutput, generation: int) -> Any:
        metadata = {**(job.request.get("metadata") or {}), "payment_job_id": decided.payment}
        try:
            return retry_in_process(self.stripe.create_refund)(
                job.id,
                payment_intent=str(decided.payment_intent),
                amount=decided.amount,
                idempotency_key=f"{job.id}:refund:g{generation}",
                reason=job.request.get("reason"),
                metadata=metadata,
            )
        except StripeError as exc:
            # The generation this call used, for the progress note the caller makes of it.
            exc.generation = generation  # type: ignore[attr-defined]
            raise


def _check_matches(job_id: str, refund: object, decided: AmountOutput) -> None:
    """Raises :class:`PoisonError` when the refund Stripe holds for the job is not the one the job decided."""
    amount, currency = int(getattr(refund, "amount", 0) or 0), str(getattr(refund, "currency", "") or "").lower()
    if amount != decided.amount or currency != decided.currency.lower():
        raise PoisonError(
            f"incident: Stripe refund {getattr(refund, 'id', '?')} of job {job_id} is {amount} {currency}, the job "
            f"decided {decided.amount} {decided.currency}; not refunding again"
        )


def _fail(job_id: str, code: str, message: str, data: RefundOutput | None = None) -> StageResult:
    """A business failure: the job fails and its reservation stops counting, in the same commit."""

    def release(conn: sa.Connection) -> None:
        conn.execute(
            refunds.update()
            .where(refunds.c.id == job_id, refunds.c.status == "reserved")
            .values(status="failed", updated_at=sa.func.now())
        )

    return StageResult(
        data=data if data is not None else {}, status="failed", error={"code": code, "message": message}, write=release
    )
