"""The ``payment`` job kind: one card payment, fraud → vat → charge → ledger → invoice → notify (``invoice`` only
stores the PDF of a payment that asked for an invoice; the others pass it by)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.broker.queues import work_queue
from engine.errors import PoisonError
from engine.invoices.stage import RequestedInvoiceStage
from engine.jobs.kind import EffectReplay, JobKind, Task
from engine.jobs.notify import NotifyStage
from pipelines.payment import routes
from pipelines.payment.charge import ChargeStage
from pipelines.payment.fraud import FraudStage
from pipelines.payment.ledger import LedgerStage
from pipelines.payment.request import PaymentRequest
from pipelines.payment.vat import VatStage
from pipelines.refund.holds import ReleasingRunner
from pipelines.webhook import janitor


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued payment, normalised; :class:`PoisonError` when invalid."""
    try:
        request = PaymentRequest.model_validate(data)
    except ValidationError as exc:
        raise PoisonError(f"invalid payment request: {exc.errors()[0]['msg']}") from exc
    problems = request.semantic_errors()
    if problems:
        raise PoisonError(f"invalid payment request: {problems[0][0]}: {problems[0][1]}")
    return request.model_dump(mode="json", exclude_none=True)


KIND = JobKind(
    name="payment",
    description="Run the payment pipeline for the job this envelope carries.",
    queue=work_queue("payments", "payment"),
    validate=validate,
    # The stages in order; adding a stage is one module and one line here.
    stages=(FraudStage, VatStage, ChargeStage, LedgerStage, RequestedInvoiceStage, NotifyStage),
    # Refunds held while the payment was unsettled are released as soon as it settles (pipelines/refund/holds.py).
    runner=ReleasingRunner,
    routes=routes.build_router,
    tasks=(Task("stripe-janitor", 30.0, janitor.run),),
    replay=EffectReplay(
        stage=ChargeStage,
        before="would charge: the charge stage looks the PaymentIntent up by job metadata first",
        reached=" (an earlier attempt may have reached Stripe: it is reused if it exists)",
        after="already charged ({ref}); books the ledger and notifies",
        last_left="charged and booked; only the notification is left",
        progress_key="charge_progress",
        ref_key="payment_intent",
    ),
)
