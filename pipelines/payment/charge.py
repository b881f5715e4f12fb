"""Stage ``charge``: one Stripe PaymentIntent per job, created and confirmed exactly once.

The idempotency key is ``{job_id}:charge:g{generation}``.  Stripe saves the answer of any request that reached
its endpoint under the key, 500s included, so after a 5xx or an unknown outcome the stage first looks the
PaymentIntent up (recorded id, the customer's intents by ``metadata.job_id``, search) and only when none exists
creates one under the next generation.  The intent id is checkpointed at once.

The same lookup comes first when the key may have been forgotten or the job is being sent again: Stripe keeps a
key's answer for 24 hours, so a job older than that (a message that sat in a DLQ for days) would create a second
PaymentIntent under its old key; and a replayed or reconciled job may have reached Stripe in a worker that died
before it could record anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from stripe import CardError, StripeError

from engine.adapters.stripe_gateway import StripeGateway
from engine.errors import TransientError
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from engine.jobs.stripe_effect import BREAKER_WAIT_SECONDS, StripeEffect, retry_in_process
from pipelines.payment.vat import VatOutput

log = logging.getLogger(__name__)

#: Stripe prunes idempotency keys after 24 hours; an hour of margin covers clock skew between us and Stripe.
KEY_WINDOW = timedelta(hours=23)


def must_look_up_first(job: Job, now: datetime | None = None) -> bool:
    """True when the charge must look the PaymentIntent up by job metadata before creating one: the job was sent
    again (replay, reconciler, review: ``enqueue_generation`` > 0), or it is older than Stripe's key window."""
    if job.enqueue_generation > 0:
        return True
    return job.created_at is not None and (now or datetime.now(UTC)) - job.created_at > KEY_WINDOW


@dataclass(frozen=True)
class ChargeOutput(StageOutput):
    """The PaymentIntent the job charged (or the decline), its status, the key generation that made it, and the
    Stripe charge id when there is one."""

    STAGE = "charge"

    payment_intent: str | None
    status: str
    generation: int
    charge: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if self.status == "declined":
            del data["charge"]  # a decline never had a charge to name
        return data


@dataclass
class ChargeStage:
    stripe: StripeGateway
    db: sa.Engine
    breaker_wait_seconds: float = BREAKER_WAIT_SECONDS
    name: str = "charge"

    def __post_init__(self) -> None:
        self._effect = StripeEffect(
            self.stripe, self.db, "charge_progress", "payment_intent", "request", self.breaker_wait_seconds
        )

    def run(self, job: Job) -> StageResult:
        progress = self._effect.begin(job)
        amounts = job.output(VatOutput)
        req = job.request
        generation = progress.generation
        try:
            customer = self.stripe.customer_for(job.id, req["customer"]["id"], req["customer"].get("email"))
            intent = None
            if progress.uncertain or progress.object_id or must_look_up_first(job):
                intent = self.stripe.find_intent(job.id, customer, progress.object_id)
                if intent is None:
                    generation += 1
            if intent is None:
                intent = retry_in_process(self.stripe.create_and_confirm)(
                    job.id,
                    amount=amounts.total,
                    currency=amounts.currency,
                    customer=customer,
                    payment_method=req["payment_method"],
                    idempotency_key=f"{job.id}:charge:g{generation}",
                    description=req.get("description"),
                    metadata=req.get("metadata"),
                )
            elif (
                intent.status in ("requires_confirmation", "requires_payment_method") and not intent.last_payment_error
            ):
                intent = retry_in_process(self.stripe.confirm)(job.id, intent.id, f"{job.id}:confirm:g{generation}")
        except CardError as exc:
            return self._declined(exc, generation)
        except StripeError as exc:
            self._effect.failed(job, exc, generation)
        return self._outcome(job, intent, generation)

    def _outcome(self, job: Job, intent: Any, generation: int) -> StageResult:
        data = ChargeOutput(intent.id, intent.status, generation, _charge_id(intent))
        public: dict[str, Any] = {"stripe": {"payment_intent": intent.id}}
        if intent.status == "succeeded":
            return StageResult(data=data, public=public, checkpoint=True)
        if intent.status == "requires_action":
            public["stripe"]["client_secret"] = intent.client_secret
            public["next_action"] = _plain(intent.next_action)
            return StageResult(data=data, public=public, status="requires_action")
        if intent.status in ("requires_payment_method", "canceled"):
            err = intent.last_payment_error
            error = {
                "code": getattr(err, "code", None) or "card_declined",
                "decline_code": getattr(err, "decline_code", None),
                "message": getattr(err, "message", None) or "The payment was not completed.",
            }
            return StageResult(data=data, public=public, status="failed", error={k: v for k, v in error.items() if v})
        # processing / requires_capture: Stripe has not decided yet.  Remember the intent and look again later.
        self._effect.note(job.id, {"generation": generation, "payment_intent": intent.id})
        raise TransientError(f"PaymentIntent {intent.id} is {intent.status}; checking again later")

    def _declined(self, exc: CardError, generation: int) -> StageResult:
        error_obj = exc.error
        intent = getattr(error_obj, "payment_intent", None) if error_obj is not None else None
        intent_id = getattr(intent, "id", None) or (intent.get("id") if isinstance(intent, dict) else None)
        error = {"code": "card_declined", "message": exc.user_message or str(exc)}
        decline_code = getattr(error_obj, "decline_code", None) if error_obj is not None else None
        if decline_code or exc.code not in (None, "card_declined"):
            error["decline_code"] = decline_code or exc.code
        data = ChargeOutput(intent_id, "declined", generation)
        public = {"stripe": {"payment_intent": intent_id}} if intent_id else {}
        return StageResult(data=data, public=public, status="failed", error=error)


def _charge_id(intent: Any) -> str | None:
    charge = getattr(intent, "latest_charge", None)
    if charge is None:
        return None
    return charge if isinstance(charge, str) else getattr(charge, "id", None)


def _plain(value: Any) -> Any:
    if value is None:
        return None
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value
