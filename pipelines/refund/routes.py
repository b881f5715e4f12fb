"""``POST /v1/refunds`` (admin, operator, support): a refund job for a job that charged — a payment, or a subscription
job that charged (create, renewal, upgrade) — named by its id (``payment``) or its PaymentIntent (``payment_intent``).

Checks in the order of ``docs/api.md``: 401 → 403 → 400 key → 422 body → 422/409 key → 404 payment → 422
``payment_not_captured`` / ``refund_exceeds_captured`` when that is already certain (pipelines/refund/precheck.py);
the worker decides again how much is refunded under the payment's row lock.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.adapters.auth import TokenVerifier
from engine.db import jobs as job_repo
from engine.domain.money import currency as currency_of
from engine.ingest.accept import JobAcceptor
from engine.ingest.errors import ApiError
from engine.ingest.http import correlation_id, in_thread, job_answer, read_json, validate
from engine.ingest.idempotency import IdempotencyStore, canonical_hash, check_key
from engine.ingest.openapi import contract
from engine.ingest.security import ADMIN, OPERATOR, SUPPORT, authenticate
from engine.jobs.job import Job
from pipelines.refund.precheck import check_refundable
from pipelines.refund.request import REFUNDABLE_KINDS, RefundRequest, payment_intent_of, target_job_id

REFUND_ROLES = (ADMIN, OPERATOR, SUPPORT)


def build_router(
    db: sa.Engine, verifier: TokenVerifier, idempotency: IdempotencyStore, acceptor: JobAcceptor
) -> APIRouter:
    """The refunds router."""
    router = APIRouter(prefix="/v1")
    store = idempotency

    def load_payment(refund: RefundRequest, merchant: str) -> Job | None:
        """The job the refund names, if it is of a kind that charges and of ``merchant`` (another merchant's job is
        None: 404 as on Stripe, so ids cannot be probed)."""
        with db.connect() as conn:
            job_id = target_job_id(conn, refund.model_dump(exclude_none=True))
            if job_id is None:
                return None
            try:
                job = job_repo.get(conn, job_id, merchant=merchant)
            except job_repo.JobNotFound:
                return None
        if refund.payment_intent and refund.payment and payment_intent_of(job) != refund.payment_intent:
            return None  # both named, and they disagree: no such charge
        return job if job.kind in REFUNDABLE_KINDS else None

    @router.post(
        "/refunds",
        status_code=202,
        tags=["refunds"],
        openapi_extra=contract(roles=REFUND_ROLES, body=RefundRequest, idempotent=True, errors=(404,), job=True),
        summary="Accept a refund job for a payment or a subscription charge",
    )
    async def create_refund(request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, REFUND_ROLES)
        key = check_key(request.headers.get("idempotency-key"))
        body = await read_json(request)
        refund: RefundRequest = validate(RefundRequest, body)
        request_hash = canonical_hash("POST", "/v1/refunds", body)
        # A replay (or a reused key) answers before the 404 check, in the order of docs/api.md.
        saved = await in_thread(store.lookup, principal.client, key, request_hash)
        if saved is not None:
            return job_answer(saved)
        payment = await in_thread(load_payment, refund, principal.merchant)
        if payment is None:
            param = "payment" if refund.payment else "payment_intent"
            raise ApiError(404, "not_found", f"No charge {refund.payment or refund.payment_intent}.", param=param)
        currency = (payment.public.get("amounts") or {}).get("currency") or payment.request.get("currency")
        if refund.amount is not None and currency:
            step = currency_of(str(currency)).step
            if refund.amount % step:
                raise ApiError(
                    422,
                    "validation_error",
                    f"{str(currency).upper()} amounts must be multiples of {step}.",
                    param="amount",
                )
        await in_thread(check_refundable, db, payment, refund.amount)
        # The job that charged, by id, whichever way the client named it: the worker needs no lookup.
        data = {**refund.model_dump(mode="json", exclude_none=True), "payment": payment.id}
        customer = payment.customer_id
        public: dict[str, Any] = {"refund": {"payment": payment.id, "amount": refund.amount, "currency": currency}}
        answer = await in_thread(
            acceptor.accept,
            client=principal.sub,
            merchant=principal.merchant,
            key=key,
            request_hash=request_hash,
            kind="refund",
            data=data,
            # The customer's group: refunds of one customer run in the order they were accepted.
            group_key=customer or payment.group_id,
            customer_id=customer,
            correlation_id=correlation_id(request),
            public=public,
        )
        return job_answer(answer)

    return router
