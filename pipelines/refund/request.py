"""The refund request (``POST /v1/refunds`` and upstream-enqueued refund messages), and the charge it refunds.

A refund names the job that charged: a payment, or a subscription job that charged (its create, a renewal, an
upgrade's proration) — by the job's id (``payment``) or by the PaymentIntent that job made (``payment_intent``, as
Stripe's own refunds do).  A subscription has one charge per such job, so naming the subscription alone would not
say which charge is refunded.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Annotated, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from engine.domain.money import currency as currency_of
from engine.domain.money import round_half_up_to
from engine.domain.vat import VatResult
from engine.errors import PaymentsError
from engine.jobs.job import Job
from engine.jobs.request import check_metadata
from pipelines.payment.charge import ChargeOutput
from pipelines.payment.vat import VatOutput
from pipelines.subscription.billing import credit_to_apply
from pipelines.webhook.context import CHARGING_KINDS, job_for_intent

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
#: The job kinds a refund may name: those that charge through the payment pipeline's stages.
REFUNDABLE_KINDS = CHARGING_KINDS


class RefundRequest(BaseModel):
    """``payment`` is the id of the job that charged (a payment, or a subscription create, renewal or upgrade job);
    ``payment_intent`` names that job by the PaymentIntent it made instead (exactly one of the two); ``amount``
    (minor units of what was charged, VAT included, as on Stripe) defaults to all that remains; ``reason`` is
    Stripe's."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"payment": "job_01JD3X9Q4M6Z8K2V7N5R1T0B3C", "amount": 500, "reason": "requested_by_customer"}
            ]
        },
    )

    payment: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=128,
            description="The id of the job that charged: a payment, or a subscription job that charged.",
        ),
    ]
    payment_intent: Annotated[
        str | None,
        Field(
            default=None,
            min_length=4,
            max_length=255,
            pattern=r"^pi_[A-Za-z0-9_]+$",
            description="The PaymentIntent that job made (instead of `payment`).",
        ),
    ]
    amount: Annotated[StrictInt | None, Field(default=None, ge=1, description="Minor units; default: all left.")]
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return check_metadata(value)

    @model_validator(mode="after")
    def _one_target(self) -> RefundRequest:
        if self.payment is None and self.payment_intent is None:
            raise ValueError("name the charge to refund: payment (a job id) or payment_intent")
        return self


class PaymentNotRefundable(PaymentsError):
    """The job named as the payment is not a job that charged (no figures to refund against)."""


def target_job_id(conn: sa.Connection, request: dict[str, object]) -> str | None:
    """The id of the job a refund request names: ``payment``, else the job that made ``payment_intent`` (None
    when the engine knows no job that made it)."""
    if request.get("payment"):
        return str(request["payment"])
    intent = request.get("payment_intent")
    return job_for_intent(conn, str(intent), REFUNDABLE_KINDS) if intent else None


def payment_figures(payment: Job) -> VatResult:
    """What ``payment`` charged, as the VAT stage decided it (net, VAT, total, currency, country, rate, scheme).

    Raises :class:`PaymentNotRefundable` for a job of a kind that does not charge, or one that charged nothing (a
    payment that never reached its VAT stage; a subscription job that charged nothing: a cancel, a downgrade, a
    trial's start, or a charge that did not succeed).
    """
    if payment.kind not in REFUNDABLE_KINDS:
        raise PaymentNotRefundable(f"job {payment.id} is a {payment.kind} job, not one that charges")
    vat = payment.output_or_none(VatOutput)
    if vat is None:
        raise PaymentNotRefundable(f"{payment.kind} job {payment.id} charged nothing")
    if payment.kind != "payment":
        # A subscription job decides its VAT before charging: only a charge that succeeded took the money.
        charge = payment.output_or_none(ChargeOutput)
        if charge is None or charge.status != "succeeded":
            raise PaymentNotRefundable(f"{payment.kind} job {payment.id} has no successful charge")
        return _charged_part(vat.figures(), int((payment.stage_results.get("prepare") or {}).get("credit") or 0))
    return vat.figures()


def _charged_part(invoiced: VatResult, credit: int) -> VatResult:
    """What Stripe charged of a renewal invoiced at ``invoiced`` when the customer's booked ``credit`` paid part of it
    first (pipelines/subscription/steps.py charges the VAT total less :func:`credit_to_apply`): that total, its VAT
    the invoice's share (half up, to the currency's step).  A refund can return only what Stripe took."""
    applied = credit_to_apply(credit, invoiced.total, invoiced.currency)
    if not applied:
        return invoiced
    total = invoiced.total - applied
    vat = round_half_up_to(Fraction(invoiced.vat * total, invoiced.total), currency_of(invoiced.currency).step)
    return dataclasses.replace(invoiced, total=total, vat=vat, net=total - vat)


def payment_intent_of(payment: Job) -> str | None:
    """The PaymentIntent a charging job charged, if it got that far."""
    charge = payment.output_or_none(ChargeOutput)
    intent = (charge and charge.payment_intent) or (payment.public.get("stripe") or {}).get("payment_intent")
    return str(intent) if intent else None
