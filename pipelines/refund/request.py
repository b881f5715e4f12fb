"""The refund request (``POST /v1/refunds`` and upstream-enqueued refund messages), and the payment it refunds."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from engine.domain.vat import VatResult
from engine.errors import PaymentsError
from engine.jobs.job import Job
from engine.jobs.request import check_metadata
from pipelines.payment.charge import ChargeOutput
from pipelines.payment.vat import VatOutput

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class RefundRequest(BaseModel):
    """``payment`` is the payment job's id; ``amount`` (minor units of what was charged, VAT included, as on
    Stripe) defaults to all that remains; ``reason`` is Stripe's."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    payment: Annotated[str, Field(min_length=1, max_length=128, description="The payment job's id.")]
    amount: Annotated[StrictInt | None, Field(default=None, ge=1, description="Minor units; default: all left.")]
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return check_metadata(value)


class PaymentNotRefundable(PaymentsError):
    """The job named as the payment is not a payment this engine captured (no figures to refund against)."""


def payment_figures(payment: Job) -> VatResult:
    """What ``payment`` charged, as the VAT stage decided it (net, VAT, total, currency, country, rate, scheme).

    Raises :class:`PaymentNotRefundable` for a job that is not a payment or never reached its VAT stage.
    """
    if payment.kind != "payment":
        raise PaymentNotRefundable(f"job {payment.id} is a {payment.kind} job, not a payment")
    vat = payment.output_or_none(VatOutput)
    if vat is None:
        raise PaymentNotRefundable(f"payment {payment.id} has no amounts")
    return vat.figures()


def payment_intent_of(payment: Job) -> str | None:
    """The PaymentIntent id a payment job charged, if it got that far."""
    charge = payment.output_or_none(ChargeOutput)
    intent = (charge and charge.payment_intent) or (payment.public.get("stripe") or {}).get("payment_intent")
    return str(intent) if intent else None
