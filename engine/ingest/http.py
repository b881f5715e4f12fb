"""What every ingest route shares: reading the JSON body (with the card-number guard), validating it into a
request model, the correlation id, and running blocking work off the event loop."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from engine.domain.pan import find_pan
from engine.ingest.errors import ApiError
from engine.ingest.headers import check_request_id
from engine.ingest.idempotency import SavedAnswer


def job_answer(answer: SavedAnswer) -> JSONResponse:
    """The answer of a route that accepts a job: its status and body, ``Location: /v1/jobs/{id}`` on a 202, and
    ``Idempotent-Replayed: true`` when it is the saved answer of an earlier request (as Stripe does)."""
    headers: dict[str, str] = {}
    if answer.status == 202 and isinstance(answer.body.get("id"), str):
        headers["Location"] = f"/v1/jobs/{answer.body['id']}"
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


async def read_json(request: Request, *, scan: bool = True) -> Any:
    """The JSON body, or 422 ``validation_error``.  Then the PAN guard: 422 ``pan_detected`` (value never echoed);
    ``scan=False`` leaves it to the caller (a batch scans each item and answers per item)."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(422, "validation_error", f"Body is not valid JSON: {exc}") from exc
    if not scan:
        return body
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
    """The request's correlation id (set by engine/ingest/request_context.py from X-Request-ID, or made)."""
    return (
        getattr(request.state, "correlation_id", None)
        or check_request_id(request.headers.get("x-request-id"))
        or uuid.uuid4().hex
    )


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run blocking database/SQS work off the event loop, translating a database outage into 503."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except sa.exc.OperationalError as exc:
        raise ApiError(503, "unavailable", "The database is unavailable.", retry_after=5) from exc
