"""Stage ``fraud``: explainable rules; ``review`` parks the job ``in_review``, ``decline`` fails it."""

from __future__ import annotations

from dataclasses import dataclass

from engine.adapters.stripe_gateway import StripeGateway
from engine.domain.fraud import FraudInput, FraudRules, VelocityCounter, VelocityCounts, assess
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult


@dataclass(frozen=True)
class FraudOutput(StageOutput):
    """The rules' verdict: ``approve``, ``review`` or ``decline``, its score and the rules that fired."""

    STAGE = "fraud"

    decision: str
    score: int
    reasons: tuple[str, ...]


@dataclass
class FraudStage:
    velocity: VelocityCounter
    fraud_rules: FraudRules
    #: Looks the card's country up (``card_country``).
    stripe: StripeGateway
    name: str = "fraud"

    def run(self, job: Job) -> StageResult:
        req = job.request
        customer = req["customer"]
        inp = FraudInput(
            customer_id=customer["id"],
            email=customer.get("email"),
            customer_country=customer.get("country"),
            card_country=self.stripe.card_country(req["payment_method"]),
            amount=req["amount"],
            currency=req["currency"],
            payment_method=req["payment_method"],
        )
        # The job id is the window member: a redone stage (crash before the next checkpoint) counts once.
        counts = VelocityCounts(
            customer=self.velocity.hit(
                f"customer:{inp.customer_id}", self.fraud_rules.customer_velocity_window_seconds, member=job.id
            )
            if self.fraud_rules.customer_velocity_limit is not None
            else None,
            payment_method=self.velocity.hit(
                f"payment_method:{inp.payment_method}",
                self.fraud_rules.payment_method_velocity_window_seconds,
                member=job.id,
            )
            if self.fraud_rules.payment_method_velocity_limit is not None
            else None,
        )
        assessment = assess(inp, counts, self.fraud_rules)
        data = FraudOutput(assessment.decision, assessment.score, tuple(assessment.reasons))
        public = {"fraud": data.to_json()}
        if assessment.decision == "decline":
            error = {"code": "fraud_declined", "message": "Declined by fraud rules: " + ", ".join(assessment.reasons)}
            return StageResult(data=data, public=public, status="failed", error=error)
        if assessment.decision == "review":
            return StageResult(data=data, public=public, status="in_review")
        return StageResult(data=data, public=public)
