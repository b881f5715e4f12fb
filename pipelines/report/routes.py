"""``POST /v1/reports`` (admin, operator, viewer): a report job out (202), its files linked from the job when done.

Checks in the order of ``docs/api.md``: 401 → 403 → 400 key → 422 body (``validation_error``; then what the fields
mean: ``report_type_unknown``, ``period_invalid``, ``period_not_started``, ``currency_invalid``,
``field_not_allowed``, each naming its field in ``param``) → 422/409 key.  Reading reports changes nothing, so the
read-only role may ask for one; support may not (reports are the merchant's books, not a customer's case).

A report reads the whole ledger, every merchant's sales, so only the platform's tokens (merchant ``default``) may
ask for one: another merchant's token is 403 ``forbidden``, as a role that may not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.adapters.auth import TokenVerifier
from engine.domain.merchant import DEFAULT_MERCHANT
from engine.ingest.accept import JobAcceptor
from engine.ingest.errors import ApiError
from engine.ingest.http import correlation_id, in_thread, job_answer, read_json, validate
from engine.ingest.idempotency import check_key
from engine.ingest.openapi import contract
from engine.ingest.security import ADMIN, OPERATOR, VIEWER, authenticate
from engine.reports.generate import ReportRequestError
from pipelines.report.accept import accept_report
from pipelines.report.request import ReportRequest

REPORT_ROLES = (ADMIN, OPERATOR, VIEWER)


def build_router(verifier: TokenVerifier, acceptor: JobAcceptor, clock: Callable[[], datetime]) -> APIRouter:
    """The reports router."""
    router = APIRouter(prefix="/v1")

    @router.post(
        "/reports",
        status_code=202,
        tags=["reports"],
        openapi_extra=contract(roles=REPORT_ROLES, body=ReportRequest, idempotent=True, job=True),
        summary="Accept a report job (OSS return, revenue, settlement)",
    )
    async def create_report(request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, REPORT_ROLES)
        if principal.merchant != DEFAULT_MERCHANT:
            raise ApiError(
                403,
                "forbidden",
                f"Reports cover every merchant's ledger: only the platform's merchant ({DEFAULT_MERCHANT}) may ask "
                "for one.",
            )
        key = check_key(request.headers.get("idempotency-key"))
        body = await read_json(request)
        asked: ReportRequest = validate(ReportRequest, body)
        try:
            spec = asked.spec(clock().date())
        except ReportRequestError as exc:
            raise ApiError(422, exc.code, exc.message, param=exc.param) from None
        answer = await in_thread(
            accept_report,
            acceptor,
            spec,
            body,
            client=principal.sub,
            merchant=principal.merchant,
            key=key,
            correlation_id=correlation_id(request),
        )
        return job_answer(answer)

    return router
