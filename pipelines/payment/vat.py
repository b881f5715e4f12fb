"""Stage ``vat``: place of supply, rate in force at acceptance, net/VAT/total in minor units."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from config.settings import Settings
from engine.db import jobs as job_repo
from engine.domain.vat import Scheme, VatRates, VatResult, assess_vat
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult


@dataclass(frozen=True)
class VatOutput(StageOutput):
    """What the payment charges, VAT included (minor units of ``currency``), and the VAT decision behind it."""

    STAGE = "vat"

    net: int
    vat: int
    total: int
    currency: str
    country: str
    rate: str
    scheme: Scheme
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, result: VatResult) -> VatOutput:
        """The output for an assessment."""
        return cls(
            result.net, result.vat, result.total, result.currency, result.country, result.rate, result.scheme,
            tuple(result.notes),
        )  # fmt: skip

    def figures(self) -> VatResult:
        """The assessment again (what a refund of this payment splits)."""
        return VatResult(
            country=str(self.country),
            rate=str(self.rate),
            scheme=self.scheme,
            net=int(self.net),
            vat=int(self.vat),
            total=int(self.total),
            currency=str(self.currency),
        )


@dataclass
class VatStage:
    settings: Settings
    #: Read only when the seller is not registered for OSS: its cross-border EU B2C sales so far.
    db: sa.Engine
    #: The rate table, loaded once per process (the container's ``vat_rates``).
    vat_rates: VatRates
    name: str = "vat"

    def run(self, job: Job) -> StageResult:
        oss = self.settings.vat.oss
        seller_country = self.settings.seller.country
        req = job.request
        customer = req["customer"]
        assert job.created_at is not None
        result = assess_vat(
            amount=req["amount"],
            currency=req["currency"],
            seller_country=seller_country,
            customer_country=customer["country"],
            customer_type=customer.get("type", "consumer"),
            vat_id=customer.get("vat_id"),
            tax_behavior=req.get("tax_behavior", "exclusive"),
            tax_category=req.get("tax_category", "standard"),
            at=job.created_at,
            oss=oss,
            cross_border_b2c_eur_cents=0 if oss else self._cross_border_b2c(seller_country),
            rates=self.vat_rates,
        )
        public: dict[str, object] = {"amounts": result.amounts_block(), "vat": result.vat_block()}
        if result.notes:
            public["notes"] = list(result.notes)
        return StageResult(data=VatOutput.of(result), public=public)

    def _cross_border_b2c(self, seller_country: str) -> int:
        with self.db.connect() as conn:
            return job_repo.cross_border_b2c_eur_cents(conn, seller_country)
