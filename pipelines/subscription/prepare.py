"""Stage ``prepare``: decide what a subscription job does, from the subscription row and the plans catalogue.

The decision (kept in ``stage_results["prepare"]``) says what to charge (net, currency, tax category, payment
method, invoice lines), the state change to apply if the charge succeeds (``success``) and if it is declined
(``decline``), and the events to announce.  A job with nothing to charge (trial start, cancel, downgrade, a new
payment method, a renewal covered by credit) ends here: its state change is written in the final checkpoint's
transaction, with the job's outbox event.

Times: a new subscription starts at the job's acceptance (``created_at``, whole seconds); a renewal bills at the
scheduler's ``now`` (``billed_at``, so ``payments scheduler --once --now`` simulates time); a plan change prorates at
``proration_date`` (the acceptance time unless the request gave one), clamped into the current period.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from config.settings import Settings
from engine.broker.queues import QueueCatalogue
from engine.db.ledger import account_balance
from engine.domain.ledger import customer_credit
from engine.domain.plans import Plan, PlanCatalogue, UnknownPlan
from engine.domain.timestamps import iso_utc
from engine.domain.vat import compute_amounts
from engine.invoices import numbering
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from pipelines.subscription import cancel_refunds, renewals, repo
from pipelines.subscription.billing import (
    add_intervals,
    change_plan,
    parse_schedule,
    period_bounds,
    retry_at,
    settle_due,
    whole_seconds,
)
from pipelines.subscription.repo import parse_time


def _day(value: datetime) -> str:
    return value.date().isoformat()


@dataclass(frozen=True)
class PrepareOutput(StageOutput):
    """The decision on a subscription job.

    Three shapes: refused (``action`` ``none``: the job failed); finished (``charge`` None: the state change
    ``success`` was applied with the job's final status, ``note`` says why when it is not obvious); charging (what
    to charge, the invoice ``lines``, the state change and event on ``success`` and on ``decline``, the row to
    ``create`` for a new subscription, ``billed_at``, and the subscription's API block ``after`` either outcome).
    State changes are plain dicts of column → JSON value (``pipelines/subscription/repo.py``).
    """

    STAGE = "prepare"

    action: str
    charge: dict[str, Any] | None = None
    success: dict[str, Any] | None = None
    note: str | None = None
    subscription: str | None = None
    customer: dict[str, Any] | None = None
    lines: list[dict[str, Any]] | None = None
    decline: dict[str, Any] | None = None
    success_event: str | None = None
    decline_event: str | None = None
    create: dict[str, Any] | None = None
    billed_at: str | None = None
    after: dict[str, Any] | None = None
    after_decline: dict[str, Any] | None = None
    #: A downgrade's credit note (``net``, ``vat``, ``currency``, the VAT terms of the invoice it credits,
    #: ``invoice_job``, ``invoice_number``, ``reason``): ``apply`` books and numbers it, nothing is charged.
    credit_note: dict[str, Any] | None = None
    #: A renewal: the customer's booked credit (gross) when it was decided; the charge takes what it covers.
    credit: int = 0

    def to_json(self) -> dict[str, Any]:
        """Each shape keeps only its own keys."""
        if self.action == REFUSED:
            return {"action": REFUSED}
        if self.charge is None and self.credit_note is None:
            finished: dict[str, Any] = {"action": self.action, "charge": None, "success": self.success}
            if self.note:
                finished["note"] = self.note
            return finished
        data = super().to_json()
        del data["note"]
        # A decision without credit keeps the shape it had before credits were booked.
        if data["credit_note"] is None:
            del data["credit_note"]
        if not data["credit"]:
            del data["credit"]
        return data


#: The ``action`` of a refused job's decision.
REFUSED = "none"


def _fail(code: str, message: str) -> StageResult:
    return StageResult(data=PrepareOutput(REFUSED), status="failed", error={"code": code, "message": message})


@dataclass
class PrepareStage:
    db: sa.Engine
    plans: PlanCatalogue
    #: ``dunning.schedule_days``: days after a failed renewal's period start to retry it.
    settings: Settings
    name: str = "prepare"
    #: Where an immediate cancel's prorated refunds go (None: a pipeline built without queues refunds nothing).
    queues: QueueCatalogue | None = None

    def __post_init__(self) -> None:
        # Parsed now, so a worker with a broken schedule fails when it builds the pipeline (ValueError).
        self.schedule = parse_schedule(self.settings.dunning.schedule_days)

    def run(self, job: Job) -> StageResult:
        req = job.request
        with self.db.connect() as conn:
            row = repo.get(conn, req["subscription"])
        action = req["action"]
        if action != "create" and row is None:
            return _fail("subscription_not_found", f"No subscription {req['subscription']}.")
        try:
            if action == "create":
                return self._create(job, row)
            assert row is not None
            if action == "renew":
                return self._renew(job, row)
            if action == "change":
                return self._change(job, row)
            if action == "cancel":
                return self._cancel(job, row)
            return self._payment_method(job, row)
        except UnknownPlan as exc:
            return _fail("plan_unknown", f"No plan {exc.args[0]!r} in the catalogue.")

    # -- helpers ----------------------------------------------------------------------------------------------------

    def _finish(
        self,
        job: Job,
        row: dict[str, Any],
        change: dict[str, Any],
        event: str | None,
        *,
        create: dict[str, Any] | None = None,
        note: str | None = None,
        also: Callable[[sa.Connection], None] | None = None,
        public: dict[str, Any] | None = None,
    ) -> StageResult:
        """End the job ``succeeded`` with ``change`` applied in the final checkpoint's transaction (and ``also``, in
        it too); ``public`` adds to the job's view."""
        after = repo.merged(row, change)
        sub_id = row["id"]

        def write(conn: sa.Connection) -> None:
            repo.apply(conn, sub_id, change, create=create)
            if event:
                repo.notify(conn, after, event, f"subscription:{sub_id}:{job.id}:{event}", job.id)
            if also is not None:
                also(conn)

        public = {**(public or {}), "subscription": repo.job_block(after)}
        data = PrepareOutput(job.request["action"], success=change, note=note)
        if note:
            public["subscription_note"] = note
        return StageResult(data=data, public=public, status="succeeded", write=write)

    def _charging(
        self,
        job: Job,
        row: dict[str, Any],
        plan: Plan,
        amount: int,
        lines: list[dict[str, Any]],
        success: dict[str, Any],
        decline: dict[str, Any] | None,
        billed_at: datetime,
        *,
        success_event: str,
        decline_event: str | None,
        create: dict[str, Any] | None = None,
        credit: int = 0,
    ) -> StageResult:
        decision = PrepareOutput(
            action=job.request["action"],
            subscription=row["id"],
            customer=row["customer"],
            charge={
                "amount": amount,
                "currency": plan.currency,
                "tax_category": plan.tax_category,
                "payment_method": row["payment_method"],
                "description": f"Subscription {row['id']}: {plan.name}",
            },
            lines=lines,
            success=success,
            decline=decline,
            success_event=success_event,
            decline_event=decline_event,
            create=create,
            billed_at=iso_utc(billed_at),
            after=repo.job_block(repo.merged(row, success)),
            after_decline=repo.job_block(repo.merged(row, decline or {})),
            credit=credit,
        )
        return StageResult(data=decision, public={"subscription": repo.job_block(row)})

    def _crediting(
        self, job: Job, row: dict[str, Any], change: dict[str, Any], note: dict[str, Any], at: datetime
    ) -> StageResult:
        """A downgrade whose unused time becomes a credit note: ``apply`` books it, numbers it and applies
        ``change``; nothing is charged."""
        decision = PrepareOutput(
            action=job.request["action"],
            subscription=row["id"],
            customer=row["customer"],
            success=change,
            success_event="updated",
            credit_note=note,
            billed_at=iso_utc(at),
            after=repo.job_block(repo.merged(row, change)),
        )
        public = {"subscription": repo.job_block(row), "subscription_note": "credited_on_next_renewal"}
        return StageResult(data=decision, public=public)

    def _booked_credit(self, customer_id: str, currency: str) -> int:
        """The customer's credit in the ledger (``customer_credit:{customer}``, gross, >= 0)."""
        with self.db.connect() as conn:
            return max(-account_balance(conn, customer_credit(customer_id), currency), 0)

    # -- actions ----------------------------------------------------------------------------------------------------

    def _create(self, job: Job, row: dict[str, Any] | None) -> StageResult:
        req = job.request
        plan = self.plans.get(req["plan"])
        if row is not None and row["status"] != "incomplete":
            return _fail("subscription_exists", f"Subscription {row['id']} is already {row['status']}.")
        create = {
            "customer": req["customer"],
            "plan": plan.id,
            "payment_method": req["payment_method"],
            "created_job_id": job.id,
            "merchant_id": job.merchant_id,
        }
        base = row or {
            "id": req["subscription"],
            "customer_id": req["customer"]["id"],
            "status": "incomplete",
            **create,
        }
        assert job.created_at is not None
        at = whole_seconds(job.created_at.astimezone(UTC))
        if plan.trial_days:
            end = at + timedelta(days=plan.trial_days)
            change = {
                "status": "trialing",
                "billing_cycle_anchor": iso_utc(at),
                "period_index": 0,
                "current_period_start": iso_utc(at),
                "current_period_end": iso_utc(end),
                "trial_end": iso_utc(end),
            }
            return self._finish(job, base, change, "created", create=create)
        end = add_intervals(at, plan.interval, 1)
        success = {
            "status": "active",
            "billing_cycle_anchor": iso_utc(at),
            "period_index": 0,
            "current_period_start": iso_utc(at),
            "current_period_end": iso_utc(end),
        }
        lines = [{"description": f"{plan.name}, {_day(at)} to {_day(end)}", "amount": plan.amount}]
        decline = {"status": "canceled", "canceled_at": iso_utc(at)}
        return self._charging(
            job,
            base,
            plan,
            plan.amount,
            lines,
            success,
            decline,
            at,
            success_event="created",
            decline_event="canceled",
            create=create,
        )

    def _renew(self, job: Job, row: dict[str, Any]) -> StageResult:
        req = job.request
        period_start = parse_time(req["period_start"])
        billed_at = parse_time(req["billed_at"])
        assert period_start is not None and billed_at is not None
        attempt = int(req["attempt"])
        plan = self.plans.get(row["plan"])
        if attempt == 1:
            due = row["status"] in ("active", "trialing") and row["current_period_end"] == period_start
        else:
            due = (
                row["status"] == "past_due"
                and row["current_period_start"] == period_start
                and row["dunning_attempt"] == attempt - 1
            )
        if not due:
            refused = _fail(
                "renewal_not_due", f"Subscription {row['id']} has no renewal due for {iso_utc(period_start)}."
            )
            if attempt > 1:
                return refused
            # A catch-up period behind one that was declined (or a job sent late, behind a later period): its claim
            # is given back with the job's failure, so a later pass enqueues the period again once it is due.
            job_id = job.id
            return dataclasses.replace(refused, write=lambda conn: renewals.release(conn, job_id))
        if row["cancel_at_period_end"]:
            # Canceled after the renewal was enqueued: the period ends, nothing is billed.
            change = {"status": "canceled", "canceled_at": iso_utc(period_start), "next_retry_at": None}
            return self._finish(job, row, change, "canceled", note="canceled_at_period_end")
        if attempt == 1:
            if row["status"] == "trialing":
                anchor, index = period_start, 0
            else:
                anchor, index = row["billing_cycle_anchor"], row["period_index"] + 1
            start, end = period_bounds(anchor, plan.interval, index)
            period = {
                "billing_cycle_anchor": iso_utc(anchor),
                "period_index": index,
                "current_period_start": iso_utc(start),
                "current_period_end": iso_utc(end),
            }
        else:
            start, end, period = row["current_period_start"], row["current_period_end"], {}
        due_now = settle_due(plan.amount, row["credit_balance"], plan.currency)
        success = {
            **period,
            "status": "active",
            "credit_balance": due_now.balance,
            "dunning_attempt": 0,
            "next_retry_at": None,
        }
        if due_now.charge == 0:
            # Covered by credit (or too small to charge: carried to the next invoice).
            return self._finish(job, row, success, "renewed", note="covered_by_balance")
        lines = [{"description": f"{plan.name}, {_day(start)} to {_day(end)}", "amount": plan.amount}]
        if due_now.applied > 0:
            lines.append({"description": "Credit applied (unused time)", "amount": -due_now.applied})
        elif due_now.applied < 0:
            lines.append({"description": "Balance carried from an earlier invoice", "amount": -due_now.applied})
        retry = retry_at(start, self.schedule, attempt)
        if retry is None:
            decline: dict[str, Any] = {
                **period,
                "status": "canceled",
                "canceled_at": iso_utc(billed_at),
                "dunning_attempt": attempt,
                "next_retry_at": None,
            }
            decline_event = "canceled"
        else:
            decline = {**period, "status": "past_due", "dunning_attempt": attempt, "next_retry_at": iso_utc(retry)}
            decline_event = "past_due"
        return self._charging(
            job,
            row,
            plan,
            due_now.charge,
            lines,
            success,
            decline,
            billed_at,
            success_event="renewed",
            decline_event=decline_event,
            credit=self._booked_credit(row["customer_id"], plan.currency),
        )

    def _change(self, job: Job, row: dict[str, Any]) -> StageResult:
        req = job.request
        new = self.plans.get(req["plan"])
        old = self.plans.get(row["plan"])
        if row["status"] in ("canceled", "incomplete", "past_due"):
            return _fail(f"subscription_{row['status']}", f"Subscription {row['id']} is {row['status']}.")
        if new.id == old.id:
            return self._finish(job, row, {}, None, note="plan_unchanged")
        if new.currency != old.currency:
            return _fail("plan_currency_mismatch", f"Plan {new.id} is billed in another currency than {old.id}.")
        if row["status"] == "trialing":
            # Nothing was paid for a trial: the new plan simply applies from the trial's end.
            return self._finish(job, row, {"plan": new.id}, "updated")
        assert job.created_at is not None
        at = (
            datetime.fromtimestamp(req["proration_date"], UTC)
            if req.get("proration_date") is not None
            else job.created_at.astimezone(UTC)
        )
        start, end = row["current_period_start"], row["current_period_end"]
        result = change_plan(old, new, row["billing_cycle_anchor"], row["period_index"], start, end, at)
        period = {
            "billing_cycle_anchor": iso_utc(result.anchor),
            "period_index": result.index,
            "current_period_start": iso_utc(result.period_start),
            "current_period_end": iso_utc(result.period_end),
        }
        if result.difference <= 0:
            # A downgrade: the unused difference is credited (a credit note, booked as the customer's credit) and
            # the next renewals consume it.
            with self.db.connect() as conn:
                credited = numbering.last_of_subscription(conn, row["id"])
            note = self._credit_note(old, new, -result.difference, credited, at, result.period_end, start)
            if note is not None:
                return self._crediting(job, row, {"plan": new.id, **period}, note, at)
            # Nothing invoiced to credit: the difference waits in the balance, deducted from the next net.
            change = {"plan": new.id, "credit_balance": row["credit_balance"] - result.difference, **period}
            return self._finish(job, row, change, "updated", note="credited_on_next_renewal")
        due_now = settle_due(result.difference, row["credit_balance"], new.currency)
        success = {"plan": new.id, "credit_balance": due_now.balance, **period}
        if due_now.charge == 0:
            return self._finish(job, row, success, "updated", note="covered_by_balance")
        moment = _day(max(min(at, end), start))
        label = f"Change from {old.name} to {new.name}, prorated from {moment} to {_day(result.period_end)}"
        lines = [
            {
                "description": label,
                "amount": result.difference,
            }
        ]
        if due_now.applied:
            lines.append({"description": "Balance applied", "amount": -due_now.applied})
        return self._charging(
            job,
            row,
            new,
            due_now.charge,
            lines,
            success,
            None,
            whole_seconds(job.created_at.astimezone(UTC)),
            success_event="updated",
            decline_event=None,
        )

    @staticmethod
    def _credit_note(
        old: Plan, new: Plan, net: int, invoice: Any, at: datetime, end: datetime, start: datetime
    ) -> dict[str, Any] | None:
        """The credit note of ``net`` (minor units) unused on ``old``, against the subscription's latest ``invoice``
        and with its VAT terms (rounded as the VAT stage rounds); None when there is nothing to credit, no invoice,
        or the credit exceeds that invoice (a credit note never credits more than its invoice)."""
        if net <= 0 or invoice is None:
            return None
        _, vat, _ = compute_amounts(net, invoice["currency"], Decimal(invoice["vat_rate"]), "exclusive")
        if net > int(invoice["net"]) or vat > int(invoice["vat"]):
            return None
        moment = _day(max(min(at, end), start))
        return {
            "net": net,
            "vat": vat,
            "currency": invoice["currency"],
            "vat_country": invoice["vat_country"],
            "vat_rate": invoice["vat_rate"],
            "vat_scheme": invoice["vat_scheme"],
            "invoice_job": invoice["job_id"],
            "invoice_number": invoice["number"],
            "reason": f"Unused time on {old.name} after the change to {new.name}, {moment} to {_day(end)}",
        }

    def _cancel(self, job: Job, row: dict[str, Any]) -> StageResult:
        if row["status"] == "canceled":
            return self._finish(job, row, {}, None, note="already_canceled")
        if job.request.get("at_period_end", True) and row["status"] != "incomplete":
            return self._finish(job, row, {"cancel_at_period_end": True}, "updated")
        assert job.created_at is not None
        at = job.created_at.astimezone(UTC)
        change = {"status": "canceled", "canceled_at": iso_utc(at), "next_retry_at": None}
        refunds = self._cancel_refunds(job, row, at)
        return self._finish(
            job,
            row,
            change,
            "canceled",
            also=lambda conn: cancel_refunds.write(conn, refunds),
            public={"refunds": [r.view() for r in refunds]} if refunds else None,
        )

    def _cancel_refunds(self, job: Job, row: dict[str, Any], at: datetime) -> list[cancel_refunds.CancelRefund]:
        """The prorated refunds an immediate cancel owes when the plan says so (pipelines/subscription/
        cancel_refunds.py); none for other plans, or a plan no longer in the catalogue."""
        try:
            plan = self.plans.get(row["plan"])
        except UnknownPlan:
            return []
        queue = self.queues.for_kind("refund") if self.queues is not None else None
        if plan.refund_on_cancel != "prorated" or queue is None:
            return []
        with self.db.connect() as conn:
            return cancel_refunds.decide(conn, row, at, job, queue)

    def _payment_method(self, job: Job, row: dict[str, Any]) -> StageResult:
        if row["status"] == "canceled":
            return _fail("subscription_canceled", f"Subscription {row['id']} is canceled.")
        return self._finish(job, row, {"payment_method": job.request["payment_method"]}, "updated")
