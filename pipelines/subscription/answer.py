"""What the subscription routes answer besides a job: the subscription (``GET /v1/subscriptions/{id}``,
:func:`pipelines.subscription.repo.view`), and the links from a subscription's job to it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Subscription(BaseModel):
    """A subscription as the API shows it (``docs/subscriptions.md``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "sub_01JD3XA2B6C8D0E2F4G6H8J0K2",
                    "object": "subscription",
                    "customer": "cus_42",
                    "plan": "pro-monthly",
                    "status": "active",
                    "current_period_start": "2026-11-30T10:15:00.000Z",
                    "current_period_end": "2026-12-30T10:15:00.000Z",
                    "cancel_at_period_end": False,
                }
            ]
        }
    )

    id: str
    object: str = Field(description="`subscription`.")
    customer: str
    plan: str
    status: str = Field(description="`incomplete` until the first charge succeeds, then `active`, `past_due`, ….")
    current_period_start: str | None = Field(description="ISO 8601 in UTC, ending in Z.")
    current_period_end: str | None = Field(description="ISO 8601 in UTC, ending in Z.")
    cancel_at_period_end: bool


def _to(operation: str, description: str) -> dict[str, Any]:
    return {
        "operationId": operation,
        "parameters": {"subscription_id": "$response.body#/subscription/id"},
        "description": description,
    }


#: From a subscription job's 202 (its ``subscription.id``) to the subscription and what can be done to it.
SUBSCRIPTION_LINKS: dict[str, Any] = {
    "getSubscription": _to("getSubscription", "The subscription this job creates or changes."),
    "cancelSubscription": _to("cancelSubscription", "Cancel it."),
    "changeSubscription": _to("changeSubscription", "Change its plan."),
    "updateSubscriptionPaymentMethod": _to("updateSubscriptionPaymentMethod", "Charge another payment method."),
}
