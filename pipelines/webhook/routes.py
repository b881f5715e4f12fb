"""``POST /webhooks/stripe``: Stripe events in, verified, recorded once, queued on ``webhooks.fifo``.

* The signature is checked on the raw body against every configured secret (rotation), with Stripe's 300 s
  tolerance; a forged, stale or unsigned delivery is answered 400 and counted in ``payments_webhooks_total``.
* Each event id is recorded once in ``stripe_events`` together with its webhook job, in one transaction; a repeated
  delivery answers 200 and changes nothing.
* The job's message goes to ``webhooks.fifo`` grouped by the Stripe object id, so events about one object are
  processed in order.  If SQS refuses, the rows are removed again and Stripe gets 503 (it retries).
* Event types the engine does not handle are acknowledged (200) and not recorded.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
import stripe
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects.postgresql import insert as pg_insert

from config.settings import Settings
from engine.adapters.stripe_webhooks import ENABLED_EVENTS, configured_secrets
from engine.audit import hooks as audit
from engine.broker.envelope import Envelope, to_message
from engine.broker.queues import QueueCatalogue, QueueSpec
from engine.db import jobs as job_repo
from engine.db.tables import jobs
from engine.db.tables_refunds import stripe_events
from engine.errors import PaymentsError
from engine.ingest.errors import ApiError
from engine.ingest.http import correlation_id, in_thread
from engine.ingest.openapi import contract
from engine.jobs.job import Job
from engine.jobs.kind import Lazy
from engine.runtime import metrics

log = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300


#: The document's example delivery (without its Stripe-Signature, it is answered 400).
EVENT_EXAMPLE = {
    "id": "evt_1QAbCdEfGhIjKlMn",
    "object": "event",
    "type": "charge.refunded",
    "created": 1764497700,
    "data": {"object": {"id": "ch_1QAbCdEfGhIjKlMn", "object": "charge", "amount_refunded": 500}},
}


STRIPE_SIGNATURE_PARAMETER = {
    "name": "Stripe-Signature",
    "in": "header",
    "required": True,
    "description": "Stripe's signature of the raw body (`t=…,v1=…`) with the endpoint's signing secret; a missing, "
    "forged or stale one (older than 300 s) is answered 400.",
    "schema": {"type": "string", "minLength": 1},
}


class WebhookReceipt(BaseModel):
    """The 200 Stripe gets: the event was received; ``handled`` when its type is one the engine acts on, then
    whether it was a ``duplicate`` delivery and the webhook ``job`` that handles it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"received": True, "handled": True, "duplicate": False, "job": "job_01JD3XB7C9D1E3F5G7H9J1K3M5"},
                {"received": True, "handled": False},
            ]
        }
    )

    received: bool
    handled: bool
    duplicate: bool | None = None
    job: str | None = Field(default=None, description="The webhook job's id.")


class SignatureRefused(PaymentsError):
    """The delivery is not signed by any configured secret (``outcome`` ``forged``) or too old (``stale``)."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def verify_signature(payload: bytes, header: str | None, secrets: list[str]) -> None:
    """Accept ``payload`` when one of ``secrets`` signed it within the tolerance (Stripe's own check, per secret).

    Raises :class:`SignatureRefused`: ``stale`` when a secret's signature matches but the timestamp is older than
    300 s (a replay), ``forged`` otherwise (no header, no matching signature).
    """
    stale = False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=TOLERANCE_SECONDS)
            return
        except stripe.SignatureVerificationError as exc:
            # The SDK checks the signature before the timestamp: a tolerance error means this secret signed it.
            stale = stale or "tolerance" in str(exc)
    if stale:
        raise SignatureRefused("stale", "The signature's timestamp is outside the 300 s tolerance.")
    raise SignatureRefused("forged", "No signature matches a configured webhook secret.")


def object_id_of(event: dict[str, Any]) -> str | None:
    """The id of the Stripe object an event is about (the message group)."""
    obj = (event.get("data") or {}).get("object") or {}
    value = obj.get("id") if isinstance(obj, dict) else None
    return str(value) if value else None


def record_event(
    db: sa.Engine, broker: Any, queue: QueueSpec, event: dict[str, Any], correlation: str | None
) -> tuple[Job, bool]:
    """Record ``event`` and its webhook job once; ``(job, True)`` when it was new and has been queued on ``queue``.

    Raises :class:`ApiError` 503 when the message cannot be queued (nothing stays recorded, Stripe retries).
    """
    event_id = str(event["id"])
    object_id = object_id_of(event)
    draft = Job.accepted(
        kind="webhook",
        queue=queue.name(""),
        idempotency_scope=f"stripe:event:{event_id}",
        group_id=object_id or event_id,
        request=event,
        correlation_id=correlation,
        public={"stripe": {"event": event_id, "type": event["type"], "object": object_id}},
    )
    with db.begin() as conn:
        inserted = conn.execute(
            pg_insert(stripe_events)
            .values(
                id=event_id,
                type=str(event["type"]),
                object_id=object_id,
                job_id=draft.id,
                created=event.get("created") if isinstance(event.get("created"), int) else None,
            )
            .on_conflict_do_nothing(index_elements=[stripe_events.c.id])
            .returning(stripe_events.c.job_id)
        ).first()
        if inserted is None:
            known = conn.execute(sa.select(stripe_events.c.job_id).where(stripe_events.c.id == event_id)).scalar_one()
            return job_repo.get(conn, known), False
        job = job_repo.insert(conn, draft)
        audit.webhook_received(conn, job=job, event=event)
    envelope = Envelope.new(
        kind="webhook",
        data=event,
        idempotency_scope=draft.idempotency_scope,
        group_id=draft.group_id,
        job_id=job.id,
        correlation_id=correlation,
    )
    try:
        broker.enqueue(to_message(envelope, queue.base))
    except Exception as exc:
        log.warning("could not enqueue webhook event %s: %s", event_id, exc)
        with db.begin() as conn:
            conn.execute(stripe_events.delete().where(stripe_events.c.id == event_id))
            conn.execute(jobs.delete().where(jobs.c.id == job.id, jobs.c.status == "accepted"))
        raise ApiError(503, "unavailable", "The webhook queue is unavailable.", retry_after=5) from exc
    return job, True


def build_router(settings: Settings, db: sa.Engine, broker: Lazy[Any], queues: QueueCatalogue) -> APIRouter:
    """The Stripe webhook receiver (no bearer token: the Stripe signature authenticates)."""
    router = APIRouter()
    queue = queues.for_kind("webhook")
    assert queue is not None

    @router.post(
        "/webhooks/stripe",
        tags=["webhooks"],
        summary="Receive a signed Stripe event",
        # No bearer token: the Stripe-Signature header authenticates the delivery.
        openapi_extra={
            **contract(errors=(503,), answer=WebhookReceipt, headers=(STRIPE_SIGNATURE_PARAMETER,)),
            "requestBody": {
                "required": True,
                "description": "The Stripe event exactly as Stripe sent it (the signature covers the raw bytes).",
                "content": {"application/json": {"schema": {"type": "object"}, "example": EVENT_EXAMPLE}},
            },
        },
    )
    async def stripe_webhook(request: Request) -> JSONResponse:
        payload = await request.body()
        secrets = configured_secrets(settings)
        if not secrets:
            metrics.WEBHOOKS.labels("unconfigured").inc()
            log.warning("a Stripe webhook arrived but no signing secret is configured")
            raise ApiError(503, "unavailable", "No webhook signing secret is configured.", retry_after=60)
        try:
            # Stripe signs UTF-8 JSON; other bytes are no Stripe event (and the SDK's check would raise on them).
            payload.decode("utf-8")
        except UnicodeDecodeError:
            metrics.WEBHOOKS.labels("forged").inc()
            raise ApiError(400, "signature_invalid", "The body is not UTF-8: not a Stripe event.") from None
        try:
            verify_signature(payload, request.headers.get("stripe-signature"), secrets)
        except SignatureRefused as exc:
            metrics.WEBHOOKS.labels(exc.outcome).inc()
            code = "signature_stale" if exc.outcome == "stale" else "signature_invalid"
            raise ApiError(400, code, str(exc)) from None
        try:
            event = json.loads(payload)
            if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event.get("type"):
                raise ValueError("not a Stripe event")
        except ValueError as exc:
            metrics.WEBHOOKS.labels("malformed").inc()
            raise ApiError(400, "validation_error", f"Body is not a Stripe event: {exc}") from None
        if event["type"] not in ENABLED_EVENTS:
            metrics.WEBHOOKS.labels("ignored").inc()
            return JSONResponse({"received": True, "handled": False})
        job, new = await in_thread(record_event, db, broker(), queue, event, correlation_id(request))
        metrics.WEBHOOKS.labels("accepted" if new else "duplicate").inc()
        return JSONResponse({"received": True, "handled": True, "duplicate": not new, "job": job.id})

    return router
