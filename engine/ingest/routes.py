"""The ``/v1`` routes every job kind shares: ``GET /v1/jobs/{id}``, ``GET /v1/jobs``, ``POST /v1/jobs/{id}/review``.

Each kind's own routes live in its package (``pipelines/<kind>/routes.py``).  Checks run in the order of
``docs/api.md``: 401 → 403 → 422 body → 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from engine.db import jobs as job_repo
from engine.ingest.errors import ApiError
from engine.ingest.http import in_thread, read_json, validate
from engine.ingest.openapi import contract
from engine.ingest.schemas import Job, JobList, ReviewDecision
from engine.ingest.security import ADMIN, ALL_ROLES, SUPPORT, authenticate
from engine.runtime.container import Container


def build_router(c: Container) -> APIRouter:
    """The routes every kind shares: retrieve and list jobs, and decide a job parked ``in_review``."""
    router = APIRouter(prefix="/v1")
    verifier = c.verifier
    kinds = [kind.name for kind in c.kinds]

    @router.get(
        "/jobs/{job_id}",
        tags=["jobs"],
        summary="Retrieve a job",
        openapi_extra=contract(roles=ALL_ROLES, errors=(404,), answer=Job),
    )
    async def get_job(job_id: str, request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, ALL_ROLES)

        def load() -> dict[str, Any]:
            with c.db.connect() as conn:
                # Another merchant's job is not found (404, as on Stripe): ids cannot be probed.
                return job_repo.get(conn, job_id, merchant=principal.merchant).view_for(principal.sub)

        try:
            return JSONResponse(await in_thread(load))
        except job_repo.JobNotFound:
            raise ApiError(404, "not_found", f"No job {job_id}.", param="id") from None

    @router.get(
        "/jobs",
        tags=["jobs"],
        summary="List jobs, newest first",
        openapi_extra=contract(roles=ALL_ROLES, errors=(404, 422), answer=JobList),
    )
    async def list_jobs(
        request: Request,
        status: str | None = None,
        kind: str | None = None,
        customer: str | None = None,
        cursor: str | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        limit: int = Query(default=20, ge=1, le=100),
    ) -> JSONResponse:
        principal = authenticate(request, verifier, ALL_ROLES)
        if kind is not None and kind not in kinds:
            raise ApiError(422, "validation_error", f"kind must be one of {', '.join(kinds)}", param="kind")
        anchors = [
            name
            for name, v in (("cursor", cursor), ("starting_after", starting_after), ("ending_before", ending_before))
            if v is not None
        ]
        if len(anchors) > 1:
            raise ApiError(422, "validation_error", f"give only one of {', '.join(anchors)}", param=anchors[1])

        def load() -> dict[str, Any]:
            with c.db.connect() as conn:
                rows, has_more, next_cursor = job_repo.page(
                    conn,
                    limit=limit,
                    cursor=cursor,
                    status=status,
                    kind=kind,
                    customer=customer,
                    starting_after=starting_after,
                    ending_before=ending_before,
                    merchant=principal.merchant,
                )
            return {
                "object": "list",
                "url": "/v1/jobs",
                "data": [j.view_for(principal.sub) for j in rows],
                "has_more": has_more,
                "next_cursor": next_cursor,
            }

        try:
            return JSONResponse(await in_thread(load))
        except job_repo.AnchorNotFound as exc:
            param = "starting_after" if starting_after is not None else "ending_before"
            raise ApiError(404, "not_found", f"No job {exc}.", param=param) from None
        except ValueError:
            raise ApiError(422, "validation_error", "cursor is not one this API made", param="cursor") from None

    @router.post(
        "/jobs/{job_id}/review",
        tags=["jobs"],
        openapi_extra=contract(roles=(ADMIN, SUPPORT), body=ReviewDecision, errors=(404, 409), answer=Job),
        summary="Approve or decline a job parked in_review",
    )
    async def review_job(job_id: str, request: Request) -> JSONResponse:
        from engine.errors import TransientError
        from engine.ops.review import ChargedAtStripe, NotInReview, decide

        principal = authenticate(request, verifier, (ADMIN, SUPPORT))
        body = await read_json(request)
        decision: ReviewDecision = validate(ReviewDecision, body)
        try:
            job = await in_thread(decide, c, job_id, decision.decision, principal.sub, principal.merchant)
        except job_repo.JobNotFound:
            raise ApiError(404, "not_found", f"No job {job_id}.", param="id") from None
        except ChargedAtStripe as exc:
            raise ApiError(409, "job_charged_at_stripe", str(exc), error_type="invalid_request_error") from None
        except NotInReview as exc:
            raise ApiError(409, "job_not_in_review", str(exc), error_type="invalid_request_error") from None
        except TransientError as exc:
            raise ApiError(503, "stripe_unavailable", str(exc), error_type="api_error") from None
        return JSONResponse(job.view_for(principal.sub))

    return router
