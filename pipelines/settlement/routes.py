"""``POST /v1/settlements``: a POS batch CSV in, a settlement job out (202).

Checks in the order of ``docs/api.md``: 401 → 403 → 400 key → 415 not CSV → 422 ``validation_error`` (empty body, bad
header) / ``pan_detected`` → 422 ``idempotency_key_reused`` / 409 ``idempotency_key_in_use``.  The body is streamed:
scanned for card numbers and sent to S3 part by part, never held whole in memory (:mod:`pipelines.settlement.upload`).
Because the verdict on card numbers needs the whole body, the idempotency check runs after the upload; an object
uploaded for a replayed or refused request is deleted again.  An object store that fails is 503 with Retry-After
(nothing accepted, nothing left behind).
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from config.settings import Settings
from engine.adapters.auth import TokenVerifier
from engine.adapters.s3 import settlements_bucket
from engine.ingest.accept import JobAcceptor
from engine.ingest.errors import ApiError
from engine.ingest.http import correlation_id, job_answer
from engine.ingest.idempotency import check_key
from engine.ingest.openapi import contract
from engine.ingest.security import ADMIN, OPERATOR, authenticate
from engine.jobs.kind import Lazy
from pipelines.settlement.upload import BatchSink, InvalidBatch, PanDetected, accept_batch

#: Gather the request stream into pieces of this size before handing them to the scanner thread.
_FEED_BYTES = 1024 * 1024
#: The document's example batch: the header and one sale.
CSV_EXAMPLE = (
    "terminal_id,transaction_id,timestamp,type,amount,currency,card_last4,auth_code,original_transaction_id\n"
    "T-001,tx-1001,2026-11-30T10:15:00Z,sale,1250,EUR,4242,A1B2C3,\n"
)
_CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream")


def build_router(s3: Lazy[Any], settings: Settings, verifier: TokenVerifier, acceptor: JobAcceptor) -> APIRouter:
    """The settlements router."""
    router = APIRouter(prefix="/v1")
    bucket = settlements_bucket(settings)

    @router.post(
        "/settlements",
        status_code=202,
        tags=["settlements"],
        summary="Upload a POS batch (CSV) for settlement",
        openapi_extra={
            **contract(roles=(ADMIN, OPERATOR), idempotent=True, errors=(415, 422), job=True),
            "requestBody": {
                "required": True,
                "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}},
            },
        },
    )
    async def upload_settlement(request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, (ADMIN, OPERATOR))
        key = check_key(request.headers.get("idempotency-key"))
        media = request.headers.get("content-type", "text/csv").split(";", 1)[0].strip().lower()
        if media not in _CSV_TYPES:
            raise ApiError(
                415, "unsupported_media_type", "Send the batch as text/csv.", param="Content-Type",
                error_type="invalid_request_error",
            )  # fmt: skip
        sink = BatchSink(s3(), bucket)
        try:
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= _FEED_BYTES:
                    await asyncio.to_thread(sink.feed, bytes(pending))
                    pending.clear()
            if pending:
                await asyncio.to_thread(sink.feed, bytes(pending))
            stored = await asyncio.to_thread(sink.finish)
        except PanDetected as exc:
            raise ApiError(
                422,
                "pan_detected",
                f"Line {exc.line} of the batch carries what looks like a card number; nothing was stored. "
                "Send card_last4 only.",
            ) from None
        except InvalidBatch as exc:
            raise ApiError(422, "validation_error", str(exc), param="body") from None
        except (BotoCoreError, ClientError) as exc:
            await asyncio.to_thread(sink.abort)
            raise ApiError(
                503, "unavailable", "The object store is unavailable; nothing was accepted.", retry_after=5
            ) from exc
        except BaseException:
            await asyncio.to_thread(sink.abort)
            raise
        try:
            answer = await asyncio.to_thread(
                accept_batch,
                acceptor,
                s3(),
                stored,
                client=principal.sub,
                merchant=principal.merchant,
                key=key,
                correlation_id=correlation_id(request),
            )
        except sa.exc.OperationalError as exc:
            raise ApiError(503, "unavailable", "The database is unavailable.", retry_after=5) from exc
        return job_answer(answer)

    return router
