"""Stage ``charge``: one Stripe PaymentIntent per job, created and confirmed exactly once.

The idempotency key is ``{job_id}:charge:g{generation}``.  The fraud verdict and the VAT split it charges were
committed before this stage runs (``persist_before``), so a redelivery charges exactly what the first delivery
did, and the same key always carries the same parameters.

After a timeout or a dropped connection the next attempt uses the **same** key: Stripe replays the saved answer,
or answers 409 while the first request is still being processed, so a second PaymentIntent cannot appear.  The key
moves to the next generation only when Stripe replays a saved 5xx under it (the key is spent: it will answer that
5xx for 24 hours) **and** a paginated lookup by ``metadata.job_id`` finds no intent.

The lookup comes first when the key may have been forgotten or the job is being sent again: Stripe keeps a key's
answer for 24 hours, so a job older than that (a message that sat in a DLQ for days) would create a second
PaymentIntent under its old key; and a replayed or reconciled job may have reached Stripe in a worker that died
before it could record anything.

Whatever intent is found or replayed must charge the job's total in the job's currency; one that does not is an
incident (:class:`IntentMismatch`: the job is dead-lettered with the reason), never a reason to charge again.
Several intents for one job are an incident too (:class:`engine.adapters.stripe_gateway.DuplicateIntents`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from stripe import APIError, CardError, InvalidRequestError, StripeError

from engine.adapters.stripe_gateway import StripeGateway
from engine.errors import PoisonError, TransientError
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from engine.jobs.stripe_effect import BREAKER_WAIT_SECONDS, StripeEffect, replayed, retry_in_process
from engine.runtime import metrics
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


class IntentMismatch(PoisonError):
    """A PaymentIntent found or replayed for the job charges another amount or currency than the job's VAT stage
    decided: an incident for an operator (never charged again, never booked)."""

    def __init__(self, job_id: str, intent: Any, amount: int, currency: str) -> None:
        super().__init__(
            f"incident: PaymentIntent {intent.id} of job {job_id} charges {intent.amount} {intent.currency}, "
            f"the job {amount} {currency}; not charged again, not booked"
        )
        self.job_id = job_id
        self.intent_id = str(intent.id)


def check_intent(job_id: str, intent: Any, amount: int, currency: str) -> None:
    """Raise :class:`IntentMismatch` (after counting the incident) unless ``intent`` charges ``amount``
    ``currency``."""
    if int(intent.amount) == amount and str(intent.currency).lower() == currency.lower():
        return
    metrics.STRIPE_INCIDENTS.labels("payment", "amount_mismatch").inc()
    log.error("INCIDENT: intent %s does not match job %s", intent.id, job_id, extra={"job_id": job_id})
    raise IntentMismatch(job_id, intent, amount, currency)


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
    #: The fraud verdict and the VAT split are committed before the charge (see the module docstring).
    persist_before: bool = True

    def __post_init__(self) -> None:
        self._effect = StripeEffect(
            self.stripe, self.db, "charge_progress", "payment_intent", "request", self.breaker_wait_seconds
        )

    def run(self, job: Job) -> StageResult:
        """Charge the job's VAT total once.  Returns the outcome (``failed`` for a decline); raises
        :class:`TransientError` to be retried, :class:`IntentMismatch` / ``DuplicateIntents`` for an incident."""
        progress = self._effect.begin(job)
        amounts = job.output(VatOutput)
        req = job.request
        generation = progress.generation
        try:
            customer = self.stripe.customer_for(
                job.id, req["customer"]["id"], req["customer"].get("email"), job.merchant_id
            )
            intent = None
            if progress.object_id or must_look_up_first(job):
                intent = self.stripe.find_intent(job.id, customer, progress.object_id)
            if intent is None:
                intent, generation = self._create(job, customer, amounts, generation)
            elif (
                intent.status in ("requires_confirmation", "requires_payment_method") and not intent.last_payment_error
            ):
                check_intent(job.id, intent, amounts.total, amounts.currency)
                intent = retry_in_process(self.stripe.confirm)(job.id, intent.id, f"{job.id}:confirm:g{generation}")
        except CardError as exc:
            return self._declined(exc, getattr(exc, "generation", generation))
        except StripeError as exc:
            self._effect.failed(job, exc, getattr(exc, "generation", generation))
        check_intent(job.id, intent, amounts.total, amounts.currency)
        return self._outcome(job, intent, generation)

    def _create(self, job: Job, customer: str, amounts: VatOutput, generation: int) -> tuple[Any, int]:
        """Create and confirm the intent under ``generation``'s key; when Stripe replays a saved 5xx for that key,
        the intent a lookup finds, else a new one under the next generation.  Returns the intent and the generation
        that made it; raises the SDK's errors."""
        try:
            return self._create_under(job, customer, amounts, generation), generation
        except APIError as exc:
            if not (replayed(exc) and (exc.http_status or 500) >= 500):
                raise  # a first answer: the next attempt repeats the same key
        # The key is spent (Stripe would replay that 5xx for a day).  Only when Stripe has no intent for the job
        # is a new key safe; the lookup reads every page of the customer's intents, then a search.
        found = self.stripe.find_intent(job.id, customer)
        if found is not None:
            return found, generation
        generation += 1
        log.info("job %s: key generation %d after a replayed 5xx", job.id, generation, extra={"job_id": job.id})
        return self._create_under(job, customer, amounts, generation), generation

    def _create_under(self, job: Job, customer: str, amounts: VatOutput, generation: int) -> Any:
        req = job.request
        try:
            return retry_in_process(self.stripe.create_and_confirm)(
                job.id,
                amount=amounts.total,
                currency=amounts.currency,
                customer=customer,
                payment_method=req["payment_method"],
                idempotency_key=f"{job.id}:charge:g{generation}",
                description=req.get("description"),
                metadata=req.get("metadata"),
            )
        except StripeError as exc:
            # The generation this call used, for the decline or the progress note the caller makes of it.
            exc.generation = generation  # type: ignore[attr-defined]
            raise

    def _outcome(self, job: Job, intent: Any, generation: int) -> StageResult:
        data = ChargeOutput(intent.id, intent.status, generation, _charge_id(intent))
        public: dict[str, Any] = {"stripe": {"payment_intent": intent.id}}
        if intent.status == "succeeded":
            # No commit of its own: the ledger's final checkpoint carries it, and a redelivery before that gets
            # the same intent back from Stripe under the same key (or from the lookup past the key window).
            return StageResult(data=data, public=public)
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
        self._effect.note(job.id, {"generation": generation, "payment_intent": intent.id}, expected_stage=job.stage)
        raise TransientError(f"PaymentIntent {intent.id} is {intent.status}; checking again later")

    def give_up(self, job: Job, parked: StageResult, error: dict[str, Any]) -> StageResult:
        """End a charge that ``run`` left ``requires_action`` without waiting for the customer: its PaymentIntent is
        canceled, so nobody can complete it later.  The ``failed`` outcome with ``error``; or the charge's success
        when the customer authenticated before the cancel arrived (Stripe refuses to cancel a succeeded intent).

        The cancel's key is ``{job_id}:cancel:g{generation}``: a redelivered copy (the charge's replayed answer is
        ``requires_action`` again) gets the saved cancel back.  Raises :class:`TransientError` to be retried.
        """
        assert isinstance(parked.data, ChargeOutput) and parked.data.payment_intent
        intent_id, generation = parked.data.payment_intent, parked.data.generation
        try:
            try:
                intent = retry_in_process(self.stripe.cancel_intent)(
                    job.id, intent_id, f"{job.id}:cancel:g{generation}"
                )
            except InvalidRequestError:
                # Not cancelable: already canceled by another copy's key, or completed meanwhile.  Stripe decides.
                intent = self.stripe.retrieve_intent(job.id, intent_id)
        except StripeError as exc:
            raise TransientError(f"could not cancel PaymentIntent {intent_id}: {exc.user_message or exc}") from exc
        if intent.status == "succeeded":
            amounts = job.output(VatOutput)
            check_intent(job.id, intent, amounts.total, amounts.currency)
            return self._outcome(job, intent, generation)
        if intent.status != "canceled":
            raise TransientError(f"PaymentIntent {intent_id} is {intent.status} after its cancel; checking again")
        data = ChargeOutput(intent.id, "canceled", generation)
        return StageResult(data=data, public={"stripe": {"payment_intent": intent.id}}, status="failed", error=error)

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
