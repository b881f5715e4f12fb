"""Request bodies of the subscription routes, and the request a subscription job carries (``action`` + fields)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictInt, model_validator

from engine.jobs.request import Customer, Strict

PaymentMethod = Annotated[str, Field(min_length=1, max_length=255)]
PlanId = Annotated[str, Field(min_length=1, max_length=64)]
ACTIONS = ("create", "cancel", "change", "payment_method", "renew")


class SubscriptionCreate(Strict):
    """``POST /v1/subscriptions``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer": {"id": "cus_42", "email": "anna@example.ie", "country": "IE"},
                    "plan": "pro-monthly",
                    "payment_method": "pm_card_visa",
                }
            ]
        }
    )

    customer: Customer
    plan: PlanId
    payment_method: PaymentMethod


class SubscriptionCancel(Strict):
    """``POST /v1/subscriptions/{id}/cancel``: at the end of the current period (default) or now."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"at_period_end": True}]})

    at_period_end: StrictBool = True


class SubscriptionChange(Strict):
    """``POST /v1/subscriptions/{id}/change``: ``proration_date`` is a Unix timestamp, as on Stripe."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"plan": "pro-yearly"}]})

    plan: PlanId
    proration_date: StrictInt | None = Field(default=None, ge=0)


class SubscriptionPaymentMethod(Strict):
    """``POST /v1/subscriptions/{id}/payment_method``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"payment_method": "pm_card_mastercard"}]})

    payment_method: PaymentMethod


class SubscriptionJobRequest(Strict):
    """What a ``subscription`` job carries (the ingest builds it; an upstream system may enqueue it directly)."""

    action: Literal["create", "cancel", "change", "payment_method", "renew"]
    subscription: Annotated[str, Field(min_length=1, max_length=64)]
    customer: Customer | None = None
    plan: PlanId | None = None
    payment_method: PaymentMethod | None = None
    at_period_end: StrictBool | None = None
    proration_date: StrictInt | None = None
    period_start: str | None = None
    attempt: StrictInt | None = Field(default=None, ge=1)
    billed_at: str | None = None

    @model_validator(mode="after")
    def _fields_of_action(self) -> SubscriptionJobRequest:
        required: dict[str, tuple[str, ...]] = {
            "create": ("customer", "plan", "payment_method"),
            "cancel": ("at_period_end",),
            "change": ("plan",),
            "payment_method": ("payment_method",),
            "renew": ("period_start", "attempt", "billed_at"),
        }
        missing = [name for name in required[self.action] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"action {self.action} needs {', '.join(missing)}")
        return self

    def data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
