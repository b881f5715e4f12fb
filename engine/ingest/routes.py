"""The ``/v1`` routes.  Checks run in the order of ``docs/api.md``: 401 → 403 → 400 key → 422 body → 422/409 key
→ 404."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from engine.adapters.auth import TokenVerifier
from engine.db import jobs as job_repo
from engine.db.tables import JOB_KINDS as KINDS
from engine.domain.pan import find_pan
from engine.ingest.accept import JobAcceptor
from engine.ingest.errors import ApiError
from engine.ingest.idempotency import IdempotencyStore, canonical_hash, check_key
from engine.ingest.schemas import ReviewDecision
from engine.ingest.security import ADMIN, ALL_ROLES, OPERATOR, SUPPORT, authenticate
from engine.runtime.container import Container
from pipelines.payment.request import PaymentRequest

WRITE_ROLES = (ADMIN, OPERATOR)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


async def read_json(request: Request) -> Any:
    """The JSON body, or 422 ``validation_error``.  Then the PAN guard: 422 ``pan_detected`` (value never echoed)."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"Body is not valid JSON: {exc}") from exc
    where = find_pan(body)
    if where is not None:
        raise ApiError(
            422,
            "pan_detected",
            "The request carries what looks like a card number; card numbers must never be sent here.",
            param=None if where == "$" else where,
        )
    return body


def validate(model: type[BaseModel], body: Any) -> Any:
    """``body`` as ``model``, or 422 ``validation_error`` naming the first offending field as a dotted path."""
    if not isinstance(body, dict):
        raise ApiError(422, "validation_error", "Body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"])
        raise ApiError(422, "validation_error", f"{param}: {first['msg']}", param=param or None) from exc


def correlation_id(request: Request) -> str:
    """The request's correlation id (set by the timing middleware from X-Request-ID, or made)."""
    return getattr(request.state, "correlation_id", None) or request.headers.get("x-request-id") or uuid.uuid4().hex


def build_router(c: Container) -> APIRouter:
    router = APIRouter(prefix="/v1")
    verifier = TokenVerifier(c.settings)
    store = IdempotencyStore(c.db, _redis_or_none(c), c.redis_prefix, c.settings.idempotency.ttl_seconds)
    acceptor = JobAcceptor(c, store)

    @router.post(
        "/payments",
        status_code=202,
        tags=["payments"],
        openapi_extra=_body_schema(PaymentRequest),
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
        answer = await _in_thread(
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

    @router.get("/jobs/{job_id}", tags=["jobs"], summary="Retrieve a job")
    async def get_job(job_id: str, request: Request) -> JSONResponse:
        authenticate(request, verifier, ALL_ROLES)

        def load() -> dict[str, Any]:
            with c.db.connect() as conn:
                return job_repo.get(conn, job_id).view()

        try:
            return JSONResponse(await _in_thread(load))
        except job_repo.JobNotFound:
            raise ApiError(404, "not_found", f"No job {job_id}.", param="id") from None

    @router.get("/jobs", tags=["jobs"], summary="List jobs, newest first")
    async def list_jobs(
        request: Request,
        status: str | None = None,
        kind: str | None = None,
        customer: str | None = None,
        cursor: str | None = None,
        limit: int = Query(default=20, ge=1, le=100),
    ) -> JSONResponse:
        authenticate(request, verifier, ALL_ROLES)
        if kind is not None and kind not in KINDS:
            raise ApiError(422, "validation_error", f"kind must be one of {', '.join(KINDS)}", param="kind")

        def load() -> dict[str, Any]:
            with c.db.connect() as conn:
                rows, has_more, next_cursor = job_repo.page(
                    conn, limit=limit, cursor=cursor, status=status, kind=kind, customer=customer
                )
            return {
                "object": "list",
                "data": [j.view() for j in rows],
                "has_more": has_more,
                "next_cursor": next_cursor,
            }

        try:
            return JSONResponse(await _in_thread(load))
        except ValueError:
            raise ApiError(422, "validation_error", "cursor is not one this API made", param="cursor") from None

    @router.post(
        "/jobs/{job_id}/review",
        tags=["jobs"],
        openapi_extra=_body_schema(ReviewDecision),
        summary="Approve or decline a job parked in_review",
    )
    async def review_job(job_id: str, request: Request) -> JSONResponse:
        from engine.ops.review import NotInReview, decide

        principal = authenticate(request, verifier, (ADMIN, SUPPORT))
        body = await read_json(request)
        decision: ReviewDecision = validate(ReviewDecision, body)
        try:
            job = await _in_thread(decide, c, job_id, decision.decision, principal.sub)
        except job_repo.JobNotFound:
            raise ApiError(404, "not_found", f"No job {job_id}.", param="id") from None
        except NotInReview as exc:
            raise ApiError(409, "job_not_in_review", str(exc), error_type="invalid_request_error") from None
        return JSONResponse(job.view())

    return router


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run blocking database/SQS work off the event loop, translating a database outage into 503."""
    import asyncio

    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except sa.exc.OperationalError as exc:
        raise ApiError(503, "unavailable", "The database is unavailable.", retry_after=5) from exc


def _redis_or_none(c: Container) -> Any:
    try:
        return c.redis
    except Exception:
        return None
