"""How the engine handles jobs of kind ``subscription``: request validation and the pipeline runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engine.errors import PoisonError
from engine.jobs.pipeline import PipelineRunner

if TYPE_CHECKING:
    from engine.runtime.services import Services


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued subscription job, normalised; :class:`PoisonError` when invalid."""
    from pipelines.subscription.request import SubscriptionJobRequest

    try:
        return SubscriptionJobRequest.model_validate(data).data()
    except ValidationError as exc:
        raise PoisonError(f"invalid subscription request: {exc.errors()[0]['msg']}") from exc


def runner(services: Services) -> PipelineRunner:
    """The subscription pipeline wired to this process's adapters.

    Loads the plans catalogue and the dunning schedule first, so a worker with a broken catalogue fails at start
    with :class:`engine.domain.plans.PlanCatalogueError` (or :class:`ValueError` for the schedule).
    """
    from engine.adapters.velocity import MemoryVelocityCounter, RedisVelocityCounter
    from engine.domain.fraud import load_fraud_rules
    from engine.domain.plans import default_plans
    from engine.domain.vat import shipped_vat_rates
    from pipelines.payment import ChargeStage, FraudStage, VatStage
    from pipelines.subscription import ApplyStage, InvoiceStage, PrepareStage, subscription_pipeline
    from pipelines.subscription.billing import parse_schedule

    c = services.c
    s = c.settings
    plans = default_plans()
    schedule = parse_schedule(s.dunning.schedule_days)
    redis_client = services.redis_or_none()
    counter = RedisVelocityCounter(redis_client, c.redis_prefix) if redis_client else MemoryVelocityCounter()
    fraud = FraudStage(counter, load_fraud_rules(), services.stripe.card_country)
    vat = VatStage(s.seller.country, s.vat.oss, services.cross_border_b2c_eur_cents, vat_rates=shipped_vat_rates())
    charge = ChargeStage(services.stripe, c.db)
    pipeline = subscription_pipeline(
        PrepareStage(c.db, plans, schedule),
        fraud,
        vat,
        charge,
        ApplyStage(s.seller.country, s.seller.vat_id),
        InvoiceStage(c.db, c.s3, s),
    )
    return PipelineRunner(c.db, pipeline)
