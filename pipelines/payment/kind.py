"""How the engine handles jobs of kind ``payment``: request validation and the pipeline runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engine.errors import PoisonError
from engine.jobs.pipeline import PipelineRunner

if TYPE_CHECKING:
    from engine.runtime.services import Services


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued payment, normalised; :class:`PoisonError` when invalid."""
    from pipelines.payment.request import PaymentRequest

    try:
        request = PaymentRequest.model_validate(data)
    except ValidationError as exc:
        raise PoisonError(f"invalid payment request: {exc.errors()[0]['msg']}") from exc
    problems = request.semantic_errors()
    if problems:
        raise PoisonError(f"invalid payment request: {problems[0][0]}: {problems[0][1]}")
    return request.model_dump(mode="json", exclude_none=True)


def runner(services: Services) -> PipelineRunner:
    """The payment pipeline wired to this process's adapters."""
    from engine.adapters.velocity import MemoryVelocityCounter, RedisVelocityCounter
    from engine.domain.fraud import load_fraud_rules
    from engine.domain.vat import shipped_vat_rates
    from pipelines.payment import ChargeStage, FraudStage, VatStage, payment_pipeline

    c = services.c
    redis_client = services.redis_or_none()
    counter = RedisVelocityCounter(redis_client, c.redis_prefix) if redis_client else MemoryVelocityCounter()
    s = c.settings
    fraud = FraudStage(counter, load_fraud_rules(), services.stripe.card_country)
    vat = VatStage(s.seller.country, s.vat.oss, services.cross_border_b2c_eur_cents, vat_rates=shipped_vat_rates())
    charge = ChargeStage(services.stripe, c.db)
    # Refunds held while the payment was unsettled are released as soon as it settles (pipelines/refund/holds.py).
    from pipelines.refund.holds import ReleasingRunner, release_held

    return ReleasingRunner(c.db, payment_pipeline(fraud, vat, charge), lambda job_id: release_held(c, job_id))
