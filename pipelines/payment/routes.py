"""``POST /v1/payments`` (admin, operator): a payment job.

Checks in the order of ``docs/api.md``: 401 → 403 → 400 key → 422 body → 422/409 key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.adapters.auth import TokenVerifier
from engine.domain.pan import find_pan
from engine.ingest.accept import JobAcceptor, Submission
from engine.ingest.errors import ApiError
from engine.ingest.http import correlation_id, in_thread, job_answer, read_json, validate
from engine.ingest.idempotency import canonical_hash, check_key
from engine.ingest.openapi import contract
from engine.ingest.security import ADMIN, OPERATOR, authenticate
from pipelines.payment.batch import BatchResult, PaymentBatch, PaymentBatchItem, batch_items
from pipelines.payment.request import PaymentRequest

WRITE_ROLES = (ADMIN, OPERATOR)


def build_router(verifier: TokenVerifier, acceptor: JobAcceptor) -> APIRouter:
    """The payments router."""
    router = APIRouter(prefix="/v1")

    @router.post(
        "/payments",
        status_code=202,
        tags=["payments"],
        openapi_extra=contract(roles=WRITE_ROLES, body=PaymentRequest, idempotent=True, job=True),
        summary="Accept a payment job",
    )
    async def create_payment(request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, WRITE_ROLES)
        key = check_key(request.headers.get("idempotency-key"))
        body = await read_json(request)
        payment: PaymentRequest = validate(PaymentRequest, body)
        for param, message in payment.semantic_errors():
            raise ApiError(422, "validation_error", message, param=param)
        data = payment.model_dump(mode="json", exclude_none=True)
        answer = await in_thread(
            acceptor.accept,
            client=principal.sub,
            merchant=principal.merchant,
            key=key,
            request_hash=canonical_hash("POST", "/v1/payments", body),
            kind="payment",
            data=data,
            group_key=payment.customer.id,
            customer_id=payment.customer.id,
            correlation_id=correlation_id(request),
            public={"customer": payment.customer.id, "amount": payment.amount, "currency": payment.currency},
        )
        return job_answer(answer)

    @router.post(
        "/payments/batch",
        status_code=207,
        tags=["payments"],
        openapi_extra=contract(
            roles=WRITE_ROLES, body=PaymentBatch, idempotent=True, answer=BatchResult, models=(PaymentBatchItem,)
        ),
        summary="Accept up to 100 payment jobs in one commit, one result per item",
    )
    async def create_payments(request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, WRITE_ROLES)
        key = check_key(request.headers.get("idempotency-key"))
        body = await read_json(request, scan=False)
        items = batch_items(body)
        correlation = correlation_id(request)
        answer = await in_thread(
            acceptor.accept_batch,
            client=principal.sub,
            merchant=principal.merchant,
            key=key,
            request_hash=canonical_hash("POST", "/v1/payments/batch", body),
            items=[_item(i, item, correlation) for i, item in enumerate(items)],
        )
        return job_answer(answer)

    return router


def _item(index: int, item: Any, correlation: str) -> tuple[str, Submission] | ApiError:
    """One batch item as the acceptor takes it, or the error it is answered with (checked as ``POST
    /v1/payments`` checks its request: the key, the card-number guard, the body, the cross-field rules)."""
    where = f"items.{index}"
    if not isinstance(item, dict) or set(item) != {"idempotency_key", "payment"}:
        return ApiError(422, "validation_error", "an item is {idempotency_key, payment}", param=where)
    try:
        item_key = check_key(item["idempotency_key"] if isinstance(item["idempotency_key"], str) else None)
        found = find_pan(item["payment"])
        if found is not None:
            raise ApiError(
                422,
                "pan_detected",
                "The item carries what looks like a card number; card numbers must never be sent here.",
                param=f"{where}.payment" if found == "$" else f"{where}.payment.{found}",
            )
        payment: PaymentRequest = validate(PaymentRequest, item["payment"])
        for param, message in payment.semantic_errors():
            raise ApiError(422, "validation_error", message, param=f"{where}.payment.{param}")
    except ApiError as exc:
        if exc.param in ("Idempotency-Key",):
            exc.param = f"{where}.idempotency_key"
        elif exc.code == "validation_error" and exc.param and not exc.param.startswith("items."):
            exc.param = f"{where}.payment.{exc.param}"
        return exc
    return item_key, Submission(
        request_hash=canonical_hash("POST", "/v1/payments", item["payment"]),
        kind="payment",
        data=payment.model_dump(mode="json", exclude_none=True),
        group_key=payment.customer.id,
        customer_id=payment.customer.id,
        correlation_id=correlation,
        public={"customer": payment.customer.id, "amount": payment.amount, "currency": payment.currency},
    )
