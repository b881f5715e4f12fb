"""Stage ``vat``: place of supply, rate in force at acceptance, net/VAT/total in minor units."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.domain.vat import VatRates, assess_vat
from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult


@dataclass
class VatStage:
    seller_country: str
    oss: bool
    #: The seller's cross-border EU B2C sales this and last calendar year, in euro cents (only read when not OSS).
    cross_border_b2c: Callable[[], int]
    #: The rate table, loaded once per process (``engine.domain.vat.shipped_vat_rates``).
    vat_rates: VatRates
    name: str = "vat"

    def run(self, job: Job) -> StageResult:
        req = job.request
        customer = req["customer"]
        assert job.created_at is not None
        result = assess_vat(
            amount=req["amount"],
            currency=req["currency"],
            seller_country=self.seller_country,
            customer_country=customer["country"],
            customer_type=customer.get("type", "consumer"),
            vat_id=customer.get("vat_id"),
            tax_behavior=req.get("tax_behavior", "exclusive"),
            tax_category=req.get("tax_category", "standard"),
            at=job.created_at,
            oss=self.oss,
            cross_border_b2c_eur_cents=0 if self.oss else self.cross_border_b2c(),
            rates=self.vat_rates,
        )
        public: dict[str, object] = {"amounts": result.amounts_block(), "vat": result.vat_block()}
        if result.notes:
            public["notes"] = list(result.notes)
        data = {**result.amounts_block(), **result.vat_block(), "notes": list(result.notes)}
        return StageResult(data=data, public=public)
