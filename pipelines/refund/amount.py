"""Stage ``amount``: decide how much is refunded and its VAT split, under the payment's row lock.

What remains refundable is the payment's total less every ``reserved``, ``pending`` or ``succeeded`` refund of it
(the engine's and the dashboard's).  The decision and the reservation commit together while the payment row is
locked, so two refunds racing for the same payment are decided one after the other and can never exceed what was
captured.
The VAT split is proportional with cumulative rounding (:func:`engine.domain.vat.proportional_vat`): the refund that
empties the payment takes exactly the VAT that remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from engine.db import jobs as job_repo
from engine.db.tables_refunds import COUNTED_STATUSES, refunds
from engine.domain.money import currency as currency_of
from engine.domain.money import format_amount
from engine.domain.vat import proportional_vat
from engine.errors import TransientError
from engine.jobs.job import FINAL, Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from pipelines.refund.request import (
    REFUNDABLE_KINDS,
    PaymentNotRefundable,
    payment_figures,
    payment_intent_of,
    target_job_id,
)


@dataclass(frozen=True)
class AmountOutput(StageOutput):
    """The refund decided: of which payment (its PaymentIntent and customer), how much (minor units, VAT
    included) and its split into net and VAT, in the payment's currency and VAT country."""

    STAGE = "amount"

    payment: str
    payment_intent: str | None
    customer: str | None
    amount: int
    net: int
    vat: int
    currency: str
    vat_country: str
    #: The payment's VAT rate and scheme, for the OSS return (None in outputs stored before they were recorded).
    vat_rate: str | None = None
    vat_scheme: str | None = None


@dataclass(frozen=True)
class NotDecided(StageOutput):
    """The amount stage ended the refund with a business failure (the job's ``error`` says which)."""

    STAGE = "amount"

    decided: bool = False


@dataclass
class AmountStage:
    db: sa.Engine
    name: str = "amount"

    def run(self, job: Job) -> StageResult:
        with self.db.begin() as conn:
            payment_id = target_job_id(conn, job.request)
            try:
                if payment_id is None:
                    raise job_repo.JobNotFound(str(job.request.get("payment_intent")))
                payment = job_repo.get(conn, payment_id, for_update=True)
            except job_repo.JobNotFound as exc:
                return _failed(conn, job, "payment_not_found", f"No payment {payment_id} to refund ({exc}).")
            if payment.kind not in REFUNDABLE_KINDS:
                return _failed(conn, job, "payment_not_found", f"Job {payment_id} is a {payment.kind} job.")
            try:
                figures = payment_figures(payment) if payment.status == "succeeded" else None
            except PaymentNotRefundable as exc:
                # A job that settled without taking money (a subscription cancel, a trial's start): nothing to refund.
                return _failed(conn, job, "payment_not_captured", f"{exc}; nothing was captured.")
            mine = conn.execute(sa.select(refunds).where(refunds.c.id == job.id)).mappings().one_or_none()
            if mine is not None and mine["status"] in COUNTED_STATUSES:
                # Decided on an earlier delivery that crashed before its checkpoint: keep that decision.
                return _decided(job, payment, dict(mine))
            if payment.status not in FINAL:
                # The runner holds refunds of unsettled payments; reaching here means the payment moved back
                # (a replay): try again later rather than deciding against an unknown capture.
                raise TransientError(f"payment {payment_id} is {payment.status}; refund waits")
            if payment.status == "failed" or figures is None:
                return _failed(conn, job, "payment_not_captured", f"Payment {payment_id} failed; nothing was captured.")
            done_total, done_vat = conn.execute(
                sa.select(
                    sa.func.coalesce(sa.func.sum(refunds.c.amount), 0), sa.func.coalesce(sa.func.sum(refunds.c.vat), 0)
                ).where(
                    refunds.c.payment_job_id == payment.id,
                    refunds.c.status.in_(COUNTED_STATUSES),
                    refunds.c.id != job.id,
                )
            ).one()
            done_total, done_vat = int(done_total), int(done_vat)
            remaining = figures.total - done_total
            requested = job.request.get("amount")
            amount = int(requested) if requested is not None else remaining
            if remaining <= 0 or amount > remaining:
                left = format_amount(max(remaining, 0), figures.currency)
                return _failed(
                    conn,
                    job,
                    "refund_exceeds_captured",
                    f"Refund of {format_amount(amount, figures.currency)} exceeds what remains of payment "
                    f"{payment.id} ({left}).",
                )
            step = currency_of(figures.currency).step
            if amount % step:
                return _failed(
                    conn, job, "amount_invalid", f"{figures.currency.upper()} amounts must be multiples of {step}."
                )
            net, vat = proportional_vat(amount, figures, done_total, done_vat)
            row = {
                "id": job.id,
                "payment_job_id": payment.id,
                "source": "engine",
                "status": "reserved",
                "amount": amount,
                "net": net,
                "vat": vat,
                "currency": figures.currency,
            }
            conn.execute(
                pg_insert(refunds)
                .values(**row)
                .on_conflict_do_update(
                    index_elements=[refunds.c.id],
                    set_={k: v for k, v in row.items() if k != "id"} | {"updated_at": sa.func.now()},
                )
            )
        return _decided(job, payment, row)


def _decided(job: Job, payment: Job, row: dict[str, Any]) -> StageResult:
    figures = payment_figures(payment)
    customer = (payment.request.get("customer") or {}).get("id") or payment.customer_id
    data = AmountOutput(
        payment=payment.id,
        payment_intent=payment_intent_of(payment),
        customer=customer,
        amount=int(row["amount"]),
        net=int(row["net"]),
        vat=int(row["vat"]),
        currency=figures.currency,
        vat_country=figures.country,
        vat_rate=figures.rate,
        vat_scheme=figures.scheme,
    )
    amounts = {"net": data.net, "vat": data.vat, "total": data.amount, "currency": figures.currency}
    public = {
        "refund": {"payment": payment.id, "amount": data.amount, "currency": figures.currency},
        "amounts": amounts,
        "vat": {"country": figures.country, "rate": figures.rate, "scheme": figures.scheme},
        "held": None,
    }
    return StageResult(data=data, public=public, checkpoint=True)


def _failed(conn: sa.Connection, job: Job, code: str, message: str) -> StageResult:
    """End the refund with a business failure; a hold or reservation of it stops counting."""
    conn.execute(
        refunds.update()
        .where(refunds.c.id == job.id, refunds.c.status.not_in(("pending", "succeeded", "reversed")))
        .values(status="failed", updated_at=sa.func.now())
    )
    return StageResult(
        data=NotDecided(), public={"held": None}, status="failed", error={"code": code, "message": message}
    )
