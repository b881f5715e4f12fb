"""The subscription pipeline: prepare → fraud → vat → charge → apply → invoice → notify.

``prepare`` decides (from the subscription and the plan) what the job charges and the state change that follows;
the payment pipeline's fraud (first charge only), VAT and charge stages run when there is something to charge;
``apply`` books the ledger, numbers the invoice and moves the subscription on in one transaction; ``invoice``
renders the PDF to S3.  Jobs with nothing to charge end at ``prepare``.
"""

from __future__ import annotations

from engine.jobs.notify import NotifyStage
from engine.jobs.pipeline import Pipeline, Stage
from pipelines.subscription.apply import ApplyStage
from pipelines.subscription.invoice import InvoiceStage
from pipelines.subscription.prepare import PrepareStage
from pipelines.subscription.steps import ChargeStep

__all__ = ["ApplyStage", "ChargeStep", "InvoiceStage", "PrepareStage", "subscription_pipeline"]


def subscription_pipeline(
    prepare: PrepareStage, fraud: Stage, vat: Stage, charge: Stage, apply: ApplyStage, invoice: InvoiceStage
) -> Pipeline:
    """The stages in order.  Fraud rules run on a subscription's first charge only: renewals and upgrades are
    charges the customer already agreed to, and would otherwise count against per-customer velocity limits."""
    return Pipeline(
        "subscription",
        (
            prepare,
            ChargeStep(fraud, frozenset({"create"})),
            ChargeStep(vat),
            ChargeStep(charge),
            apply,
            invoice,
            NotifyStage(),
        ),
    )
