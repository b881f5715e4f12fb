"""The body of ``POST /v1/payments/batch``: ``{"items": [{"idempotency_key", "payment"}, …]}``, 1 to 100 items.

The outer shape is checked here (a malformed batch is one 422); each item is checked on its own by the route, so
one bad item is answered in its slot while the others are accepted (``docs/api.md``, "Batches").
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.ingest.errors import ApiError
from engine.ingest.schemas import ErrorDetail, Job, job_example
from engine.jobs.request import Strict
from pipelines.payment.request import PAYMENT_EXAMPLE, PaymentRequest

MAX_ITEMS = 100


class PaymentBatchItem(Strict):
    idempotency_key: str = Field(description="This payment's own Idempotency-Key ([A-Za-z0-9._:-]{1,255}).")
    payment: PaymentRequest


class PaymentBatch(Strict):
    """What the OpenAPI document shows.  The route checks the items one by one: an item that is not a valid
    :class:`PaymentBatchItem` is answered in its slot of the 207 (status 422), so the document types an item as any
    object, which is what the route accepts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"idempotency_key": "order-1001", "payment": PAYMENT_EXAMPLE}]}],
        }
    )

    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="`{idempotency_key, payment}` each, `payment` as the body of createPayment (the "
        "`PaymentBatchItem` component); each is checked on its own and answered in its slot.",
    )


class BatchItemResult(BaseModel):
    """One item's result: ``status`` 202 and its ``job``, or a 4xx and its ``error`` (``param`` names the item:
    ``items.2.payment.amount``)."""

    index: int = Field(ge=0)
    status: int
    job: Job | None = None
    error: ErrorDetail | None = None


class BatchResult(BaseModel):
    """The 207 of ``POST /v1/payments/batch``: one result per item, in order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "data": [
                        {"index": 0, "status": 202, "job": job_example(status="accepted", stage=None)},
                        {
                            "index": 1,
                            "status": 422,
                            "error": {
                                "type": "invalid_request_error",
                                "code": "validation_error",
                                "message": "amount: Input should be greater than 0",
                                "param": "items.1.payment.amount",
                            },
                        },
                    ],
                }
            ]
        }
    )

    object: str = Field(description="`list`.")
    data: list[BatchItemResult]


def batch_items(body: Any) -> list[dict[str, Any]]:
    """The batch's items, each an object but otherwise unchecked.  Raises :class:`ApiError` 422
    ``validation_error`` when the body is not ``{"items": [...]}`` with 1 to :data:`MAX_ITEMS` items, or an item
    is not an object (``param`` ``items.N``): the shape the document gives a batch."""
    if not isinstance(body, dict) or set(body) != {"items"} or not isinstance(body["items"], list):
        raise ApiError(422, "validation_error", 'The body must be {"items": [...]}.', param="items")
    if not 1 <= len(body["items"]) <= MAX_ITEMS:
        raise ApiError(422, "validation_error", f"items: 1 to {MAX_ITEMS} payments per batch.", param="items")
    for index, item in enumerate(body["items"]):
        if not isinstance(item, dict):
            raise ApiError(422, "validation_error", "items: each item is an object.", param=f"items.{index}")
    return list(body["items"])
