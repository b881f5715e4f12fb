"""``POST /v1/payments`` (admin, operator): a payment job.

Checks in the order of ``docs/api.md``: 401 → 403 → 400 key → 422 body → 422/409 key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.adapters.auth import TokenVerifier
from engine.ingest.accept import JobAcceptor
from engine.ingest.errors import ApiError
from engine.ingest.http import body_schema, correlation_id, in_thread, read_json, validate
from engine.ingest.idempotency import canonical_hash, check_key
from engine.ingest.security import ADMIN, OPERATOR, authenticate
from pipelines.payment.request import PaymentRequest

WRITE_ROLES = (ADMIN, OPERATOR)


def build_router(verifier: TokenVerifier, acceptor: JobAcceptor) -> APIRouter:
    """The payments router."""
    router = APIRouter(prefix="/v1")

    @router.post(
        "/payments",
        status_code=202,
        tags=["payments"],
        openapi_extra=body_schema(PaymentRequest),
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
            key=key,
            request_hash=canonical_hash("POST", "/v1/payments", body),
            kind="payment",
            data=data,
            group_key=payment.customer.id,
            customer_id=payment.customer.id,
            correlation_id=correlation_id(request),
            public={"customer": payment.customer.id, "amount": payment.amount, "currency": payment.currency},
        )
        return JSONResponse(answer.body, status_code=answer.status)

    return router
