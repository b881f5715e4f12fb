"""The subscription routes: create, cancel, change plan, new payment method (202 jobs) and retrieve.

Checks in the order of ``docs/api.md``: 401 → 403 → 400 key → 422 body → 422/409 key → 404 subscription.  Every job runs
on ``subscriptions.fifo`` in the customer's message group, so one customer's subscription changes and renewals
run in the order they were accepted.  The subscription id is made here and returned in the 202 job; its row is
recorded (``incomplete``) right after the job is accepted, so ``GET`` knows it before a worker has run.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from engine.adapters.auth import TokenVerifier
from engine.domain.plans import PlanCatalogue, UnknownPlan
from engine.domain.vat import VatIdCountryMismatch, check_vat_id
from engine.ingest.accept import JobAcceptor
from engine.ingest.errors import ApiError
from engine.ingest.http import correlation_id, in_thread, job_answer, read_json, validate
from engine.ingest.idempotency import IdempotencyStore, canonical_hash, check_key
from engine.ingest.openapi import contract
from engine.ingest.security import ADMIN, ALL_ROLES, OPERATOR, SUPPORT, authenticate
from pipelines.subscription import repo
from pipelines.subscription.answer import SUBSCRIPTION_LINKS, Subscription
from pipelines.subscription.request import (
    SubscriptionCancel,
    SubscriptionChange,
    SubscriptionCreate,
    SubscriptionPaymentMethod,
)

WRITE_ROLES = (ADMIN, OPERATOR)
CANCEL_ROLES = (ADMIN, OPERATOR, SUPPORT)


def _plan(plans: PlanCatalogue, plan_id: str) -> None:
    try:
        plans.get(plan_id)
    except UnknownPlan:
        raise ApiError(422, "validation_error", f"plan: no plan {plan_id!r}", param="plan") from None


def build_router(
    db: sa.Engine,
    plans: PlanCatalogue,
    verifier: TokenVerifier,
    idempotency: IdempotencyStore,
    acceptor: JobAcceptor,
) -> APIRouter:
    """The subscriptions router.  The container loads the plans catalogue to build it, so a broken catalogue stops
    the ingest at start (:class:`engine.domain.plans.PlanCatalogueError`)."""
    router = APIRouter(prefix="/v1")
    store = idempotency

    def load(subscription_id: str, merchant: str) -> dict[str, Any] | None:
        """The subscription of ``merchant``; None when there is none (or it is another merchant's: 404 alike)."""
        with db.connect() as conn:
            return repo.get(conn, subscription_id, merchant=merchant)

    async def accept_action(
        request: Request,
        subscription_id: str,
        roles: tuple[str, ...],
        model: type[BaseModel],
        action: str,
        path: str,
    ) -> JSONResponse:
        principal = authenticate(request, verifier, roles)
        key = check_key(request.headers.get("idempotency-key"))
        body = await read_json(request)
        if body is None and action == "cancel":
            body = {}
        parsed = validate(model, body)
        fields = parsed.model_dump(mode="json", exclude_none=True)
        if "plan" in fields:
            _plan(plans, fields["plan"])
        request_hash = canonical_hash("POST", path, body)
        saved = await in_thread(store.lookup, principal.client, key, request_hash)
        if saved is not None:
            return job_answer(saved)
        row = await in_thread(load, subscription_id, principal.merchant)
        if row is None:
            raise ApiError(404, "not_found", f"No subscription {subscription_id}.", param="id")
        data: dict[str, Any] = {"action": action, "subscription": subscription_id, **fields}
        if action == "cancel":
            data.setdefault("at_period_end", True)
        if action == "change" and data.get("proration_date") is None:
            # Stripe prorates at the time of the request; fix it now so a retried job prorates the same.
            data["proration_date"] = int(time.time())
        answer = await in_thread(
            acceptor.accept,
            client=principal.sub,
            merchant=principal.merchant,
            key=key,
            request_hash=request_hash,
            kind="subscription",
            data=data,
            group_key=row["customer_id"],
            customer_id=row["customer_id"],
            correlation_id=correlation_id(request),
            public={"subscription": repo.job_block(row)},
        )
        return job_answer(answer)

    @router.post(
        "/subscriptions",
        status_code=202,
        tags=["subscriptions"],
        openapi_extra=contract(
            roles=WRITE_ROLES, body=SubscriptionCreate, idempotent=True, job=True, links=SUBSCRIPTION_LINKS
        ),
        summary="Accept a new subscription (first charge or trial start)",
    )
    async def create_subscription(request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, WRITE_ROLES)
        key = check_key(request.headers.get("idempotency-key"))
        body = await read_json(request)
        sub: SubscriptionCreate = validate(SubscriptionCreate, body)
        _plan(plans, sub.plan)
        if sub.customer.vat_id:
            try:
                check_vat_id(sub.customer.vat_id, sub.customer.country)
            except VatIdCountryMismatch as exc:
                raise ApiError(422, "validation_error", str(exc), param="customer.vat_id") from None
        subscription_id = repo.new_subscription_id()
        customer = sub.customer.model_dump(mode="json", exclude_none=True)
        data = {
            "action": "create",
            "subscription": subscription_id,
            "customer": customer,
            "plan": sub.plan,
            "payment_method": sub.payment_method,
        }
        block = {
            "id": subscription_id,
            "status": "incomplete",
            "plan": sub.plan,
            "current_period_start": None,
            "current_period_end": None,
        }
        answer = await in_thread(
            acceptor.accept,
            client=principal.sub,
            merchant=principal.merchant,
            key=key,
            request_hash=canonical_hash("POST", "/v1/subscriptions", body),
            kind="subscription",
            data=data,
            group_key=sub.customer.id,
            customer_id=sub.customer.id,
            correlation_id=correlation_id(request),
            public={"subscription": block},
        )
        if answer.status == 202 and (answer.body.get("subscription") or {}).get("id") == subscription_id:

            def record() -> None:
                with db.begin() as conn:
                    repo.insert_incomplete(
                        conn,
                        subscription_id=subscription_id,
                        customer=customer,
                        plan=sub.plan,
                        payment_method=sub.payment_method,
                        job_id=answer.body["id"],
                        merchant_id=principal.merchant,
                    )

            # The job is durable already; if this insert is lost the worker creates the row (it upserts).
            await in_thread(record)
        return job_answer(answer)

    @router.post(
        "/subscriptions/{subscription_id}/cancel",
        status_code=202,
        tags=["subscriptions"],
        openapi_extra=contract(
            roles=CANCEL_ROLES,
            body=SubscriptionCancel,
            idempotent=True,
            errors=(404,),
            job=True,
            links=SUBSCRIPTION_LINKS,
        ),
        summary="Cancel a subscription at period end (default) or now",
    )
    async def cancel_subscription(subscription_id: str, request: Request) -> JSONResponse:
        path = f"/v1/subscriptions/{subscription_id}/cancel"
        return await accept_action(request, subscription_id, CANCEL_ROLES, SubscriptionCancel, "cancel", path)

    @router.post(
        "/subscriptions/{subscription_id}/change",
        status_code=202,
        tags=["subscriptions"],
        openapi_extra=contract(
            roles=WRITE_ROLES,
            body=SubscriptionChange,
            idempotent=True,
            errors=(404,),
            job=True,
            links=SUBSCRIPTION_LINKS,
        ),
        summary="Change plan: an upgrade is charged at once (prorated), a downgrade credited on the next renewal",
    )
    async def change_subscription(subscription_id: str, request: Request) -> JSONResponse:
        path = f"/v1/subscriptions/{subscription_id}/change"
        return await accept_action(request, subscription_id, WRITE_ROLES, SubscriptionChange, "change", path)

    @router.post(
        "/subscriptions/{subscription_id}/payment_method",
        status_code=202,
        tags=["subscriptions"],
        openapi_extra=contract(
            roles=WRITE_ROLES,
            body=SubscriptionPaymentMethod,
            idempotent=True,
            errors=(404,),
            job=True,
            links=SUBSCRIPTION_LINKS,
        ),
        summary="Use another payment method for the next charges",
    )
    async def payment_method(subscription_id: str, request: Request) -> JSONResponse:
        path = f"/v1/subscriptions/{subscription_id}/payment_method"
        return await accept_action(
            request, subscription_id, WRITE_ROLES, SubscriptionPaymentMethod, "payment_method", path
        )

    @router.get(
        "/subscriptions/{subscription_id}",
        tags=["subscriptions"],
        summary="Retrieve a subscription",
        openapi_extra=contract(roles=ALL_ROLES, errors=(404,), answer=Subscription),
    )
    async def get_subscription(subscription_id: str, request: Request) -> JSONResponse:
        principal = authenticate(request, verifier, ALL_ROLES)
        row = await in_thread(load, subscription_id, principal.merchant)
        if row is None:
            raise ApiError(404, "not_found", f"No subscription {subscription_id}.", param="id")
        return JSONResponse(repo.view(row))

    return router
