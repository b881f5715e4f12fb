"""The payment pipeline: fraud → vat → charge → ledger → notify.  One small module per stage."""

from __future__ import annotations

from engine.jobs.notify import NotifyStage
from engine.jobs.pipeline import Pipeline
from pipelines.payment.charge import ChargeStage
from pipelines.payment.fraud import FraudStage
from pipelines.payment.ledger import LedgerStage
from pipelines.payment.vat import VatStage

__all__ = ["ChargeStage", "FraudStage", "LedgerStage", "NotifyStage", "VatStage", "payment_pipeline"]


def payment_pipeline(fraud: FraudStage, vat: VatStage, charge: ChargeStage) -> Pipeline:
    """The stages in order; adding a stage is one module and one entry here."""
    return Pipeline("payment", (fraud, vat, charge, LedgerStage(), NotifyStage()))
