"""The prorated refund of an immediate cancel, for a plan with ``refund_on_cancel: prorated``.

A subscription canceled now (``at_period_end: false``) stops at once; when its plan says so the customer gets back
the unused share of what was paid for the current period.  The charges that paid for it are the subscription jobs
that charged and left the subscription in that period (their job view's ``subscription`` block): the create or
the renewal of the period, which covers the whole period, and any upgrade charged during it, which covers the
period from its billing moment.  Each gets one refund of its own charge (VAT included):

    refund = charge total × (period end − cancel) / (period end − coverage start)

rounded once, half up, to the currency's step (:func:`pipelines.subscription.billing.prorate`), and never more than
what remains of that charge after its earlier refunds.  The VAT split is the refund pipeline's (proportional to the
charge's), and a refund of an invoiced charge issues its credit note, so these are ordinary refund jobs.

They are decided when the cancel is prepared and written with the cancel's final commit — the subscription's
``canceled`` state, each refund's job row and its dispatch row (the outbox relay sends it to ``refunds.fifo``) in
one transaction — so a cancel that commits has its refunds, and a cancel redone after a crash before its commit
decides them again.  Each refund job's scope is ``cancel-refund:{cancel job}:{charge job}`` and its id is derived
from that scope (:func:`refund_job_id`), so whichever copy of the cancel commits, the ids its view lists are the
jobs stored, and a second write inserts nothing (job and dispatch rows are insert-or-nothing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.broker.envelope import Envelope
from engine.broker.queues import QueueSpec
from engine.db import jobs as job_repo
from engine.db.outbox import add_dispatches
from engine.db.tables_refunds import COUNTED_STATUSES, refunds
from engine.db.tables_subscriptions import invoices
from engine.domain.merchant import DEFAULT_MERCHANT
from engine.domain.timestamps import iso_utc
from engine.jobs.job import Job
from pipelines.refund.request import PaymentNotRefundable, payment_figures
from pipelines.subscription.billing import prorate
from pipelines.subscription.repo import parse_time


@dataclass(frozen=True)
class CancelRefund:
    """One refund decided for a cancel: the refund job to insert and its message."""

    job: Job
    envelope: dict[str, Any]
    queue: str

    def view(self) -> dict[str, Any]:
        """The cancel job's note of it."""
        return {"job": self.job.id, "payment": self.job.request["payment"], "amount": self.job.request["amount"]}


#: The job id alphabet of :func:`engine.jobs.job.new_job_id`.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def refund_job_id(scope: str) -> str:
    """The id of the refund job of ``scope``: ``job_`` and 24 characters of the id alphabet from its SHA-256, so it
    is the same on every decision of one cancel (and as unguessable as the cancel job's id it contains)."""
    number = int.from_bytes(hashlib.sha256(scope.encode()).digest(), "big")
    chars = []
    for _ in range(24):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "job_" + "".join(chars)


def _period_charges(conn: sa.Connection, row: dict[str, Any]) -> list[Job]:
    """The subscription's jobs that charged (they have an invoice) and left it in its current period."""
    start, end = iso_utc(parse_time(row["current_period_start"])), iso_utc(parse_time(row["current_period_end"]))
    job_ids = (
        conn.execute(
            sa.select(invoices.c.job_id).where(invoices.c.subscription_id == row["id"]).order_by(invoices.c.id)
        )
        .scalars()
        .all()
    )
    found = []
    for job_id in job_ids:
        job = job_repo.get(conn, str(job_id))
        block = job.public.get("subscription") or {}
        if block.get("current_period_start") == start and block.get("current_period_end") == end:
            found.append(job)
    return found


def _coverage_start(job: Job, period_start: datetime) -> datetime:
    """When the period a charge paid for began: an upgrade's billing moment, else the period's start."""
    if job.request.get("action") == "change":
        billed = parse_time((job.stage_results.get("prepare") or {}).get("billed_at"))
        if billed is not None:
            return max(billed, period_start)
    return period_start


def decide(conn: sa.Connection, row: dict[str, Any], at: datetime, cancel: Job, queue: QueueSpec) -> list[CancelRefund]:
    """The refunds owed when the subscription ``row`` is canceled at ``at`` by job ``cancel`` (module docstring);
    none when its period is unpaid (a trial, a renewal being dunned) or already over."""
    period_start = parse_time(row.get("current_period_start"))
    period_end = parse_time(row.get("current_period_end"))
    if period_start is None or period_end is None or at >= period_end:
        return []
    decided = []
    for charge in _period_charges(conn, row):
        try:
            figures = payment_figures(charge)
        except PaymentNotRefundable:
            continue
        share = prorate(figures.total, _coverage_start(charge, period_start), period_end, at, figures.currency)
        done = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount), 0)).where(
                refunds.c.payment_job_id == charge.id, refunds.c.status.in_(COUNTED_STATUSES)
            )
        ).scalar_one()
        amount = min(share, figures.total - int(done))
        if amount <= 0:
            continue
        data = {
            "payment": charge.id,
            "amount": amount,
            "reason": "requested_by_customer",
            "metadata": {"subscription": str(row["id"]), "cancel_job": cancel.id},
        }
        scope = f"cancel-refund:{cancel.id}:{charge.id}"
        customer = str(row["customer_id"])
        draft = Job.accepted(
            kind="refund",
            queue=queue.name(""),
            idempotency_scope=scope,
            group_id=customer,
            request=data,
            customer_id=customer,
            public={"refund": {"payment": charge.id, "amount": amount, "currency": figures.currency}},
            merchant_id=row.get("merchant_id") or DEFAULT_MERCHANT,
            job_id=refund_job_id(scope),
        )
        envelope = Envelope.new(kind="refund", data=data, idempotency_scope=scope, group_id=customer, job_id=draft.id)
        decided.append(CancelRefund(draft, envelope.to_arg(), queue.base))
    return decided


def write(conn: sa.Connection, decided: list[CancelRefund]) -> None:
    """Insert the refund jobs and their dispatch rows in the caller's (the cancel's final) transaction; a job (or
    dispatch row) that exists already — an earlier commit of the same cancel — is left as it is."""
    for refund in decided:
        job_repo.insert_if_absent(conn, refund.job)
    add_dispatches(conn, [(r.job.id, r.queue, r.envelope) for r in decided])
