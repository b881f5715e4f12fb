"""The ``refund`` job kind: a refund of a payment job, amount → refund → ledger → notify."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.broker.queues import work_queue
from engine.errors import PoisonError
from engine.invoices import credit_notes
from engine.jobs.kind import JobKind, Task
from engine.jobs.notify import NotifyStage
from pipelines.refund import routes
from pipelines.refund.amount import AmountStage
from pipelines.refund.holds import RefundRunner
from pipelines.refund.ledger import LedgerStage
from pipelines.refund.request import RefundRequest
from pipelines.refund.stripe_refund import RefundStage


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued refund, normalised; :class:`PoisonError` when invalid."""
    try:
        request = RefundRequest.model_validate(data)
    except ValidationError as exc:
        raise PoisonError(f"invalid refund request: {exc.errors()[0]['msg']}") from exc
    return request.model_dump(mode="json", exclude_none=True)


KIND = JobKind(
    name="refund",
    description="Run the refund pipeline for the job this envelope carries (or hold it until its payment settles).",
    queue=work_queue("refunds", "refund"),
    validate=validate,
    stages=(AmountStage, RefundStage, LedgerStage, NotifyStage),
    # Holds a refund whose payment has not settled before any stage runs (docs/refunds.md).
    runner=RefundRunner,
    routes=routes.build_router,
    # The PDFs of credit notes issued with refund bookings (engine/invoices/credit_notes.py).
    tasks=(Task("credit-notes", 30.0, credit_notes.store_pending),),
)
