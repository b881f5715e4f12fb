"""The body of ``POST /v1/payments/batch``: ``{"items": [{"idempotency_key", "payment"}, …]}``, 1 to 100 items.

The outer shape is checked here (a malformed batch is one 422); each item is checked on its own by the route, so
one bad item is answered in its slot while the others are accepted (``docs/api.md``, "Batches").
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from engine.ingest.errors import ApiError
from engine.jobs.request import Strict
from pipelines.payment.request import PaymentRequest

MAX_ITEMS = 100


class PaymentBatchItem(Strict):
    idempotency_key: str = Field(description="This payment's own Idempotency-Key ([A-Za-z0-9._:-]{1,255}).")
    payment: PaymentRequest


class PaymentBatch(Strict):
    """What the OpenAPI document shows; the route checks items one by one instead of validating this at once."""

    items: list[PaymentBatchItem] = Field(min_length=1, max_length=MAX_ITEMS)


def batch_items(body: Any) -> list[Any]:
    """The batch's items, unchecked.  Raises :class:`ApiError` 422 ``validation_error`` when the body is not
    ``{"items": [...]}`` with 1 to :data:`MAX_ITEMS` items."""
    if not isinstance(body, dict) or set(body) != {"items"} or not isinstance(body["items"], list):
        raise ApiError(422, "validation_error", 'The body must be {"items": [...]}.', param="items")
    if not 1 <= len(body["items"]) <= MAX_ITEMS:
        raise ApiError(422, "validation_error", f"items: 1 to {MAX_ITEMS} payments per batch.", param="items")
    return list(body["items"])
