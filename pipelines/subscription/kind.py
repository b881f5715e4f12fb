"""The ``subscription`` job kind: create, cancel, change plan, new payment method and renew a subscription.

prepare → fraud → vat → charge → apply → invoice → notify, where fraud (first charge only), vat and charge are the
payment pipeline's stages run only when ``prepare`` decided to charge (``pipelines/subscription/steps.py``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.broker.queues import work_queue
from engine.errors import PoisonError
from engine.invoices.stage import InvoiceStage
from engine.jobs.kind import JobKind, Task
from engine.jobs.notify import NotifyStage
from pipelines.payment.charge import ChargeStage
from pipelines.payment.fraud import FraudStage
from pipelines.payment.vat import VatStage
from pipelines.refund.holds import ReleasingRunner
from pipelines.subscription import renewals, routes
from pipelines.subscription.apply import ApplyStage
from pipelines.subscription.prepare import PrepareStage
from pipelines.subscription.request import SubscriptionJobRequest
from pipelines.subscription.steps import ChargeStep


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued subscription job, normalised; :class:`PoisonError` when invalid."""
    try:
        return SubscriptionJobRequest.model_validate(data).data()
    except ValidationError as exc:
        raise PoisonError(f"invalid subscription request: {exc.errors()[0]['msg']}") from exc


KIND = JobKind(
    name="subscription",
    description="Run the subscription pipeline (create, change, cancel, payment method, renewal) for this job.",
    queue=work_queue("subscriptions", "subscription"),
    validate=validate,
    stages=(
        PrepareStage,
        # Fraud rules run on a subscription's first charge only: renewals and upgrades are charges the customer
        # already agreed to, and would otherwise count against per-customer velocity limits.
        ChargeStep.around(FraudStage, actions={"create"}),
        ChargeStep.around(VatStage),
        # A renewal is paid from the customer's booked credit first (a downgrade's credit note); Stripe charges the
        # rest.
        ChargeStep.around(ChargeStage, with_credit=True),
        ApplyStage,
        InvoiceStage,
        NotifyStage,
    ),
    # A refund of a charge still waiting for 3-D Secure is held until it settles (pipelines/refund/holds.py).
    runner=ReleasingRunner,
    routes=routes.build_router,
    tasks=(Task("subscription-renewals", 60.0, renewals.run),),
)
