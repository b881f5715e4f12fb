"""The payment pipeline's stages (fraud, VAT, charge) reused for a subscription's charge.

Each wrapped stage runs only when ``prepare`` decided to charge, and sees the job's request amended with the
charge (net amount, currency, tax category, payment method, the subscription's customer), which is what the
payment stages read.  The wrapper keeps the inner stage's name, so recovery points and Stripe idempotency keys
(``{job_id}:charge:g{n}``) are the payment pipeline's.

An outcome that ends the job without money taken (declined card, fraud decline; for a renewal also a charge that
would need the absent customer to authenticate, whose PaymentIntent is canceled first by
:meth:`ChargeStage.give_up` so the customer cannot complete it later) applies the decision's ``decline`` state
change in the same transaction as the job's final status: a declined first charge cancels the subscription, a
declined renewal puts it ``past_due`` (or ``canceled`` after the last dunning attempt).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.jobs.job import Job
from engine.jobs.kind import Factory, stage_name
from engine.jobs.pipeline import Stage, StageResult
from pipelines.payment.vat import VatOutput
from pipelines.subscription import repo
from pipelines.subscription.billing import credit_to_apply
from pipelines.subscription.prepare import PrepareOutput


def charge_request(job: Job, decision: PrepareOutput) -> dict[str, Any]:
    """The job's request as the payment stages expect it, for the charge ``decision`` describes."""
    charge = decision.charge
    assert charge is not None
    return {
        **job.request,
        "customer": decision.customer,
        "amount": charge["amount"],
        "currency": charge["currency"],
        "tax_category": charge["tax_category"],
        "tax_behavior": "exclusive",
        "payment_method": charge["payment_method"],
        "description": charge["description"],
        "metadata": {"subscription": decision.subscription, "action": decision.action},
    }


@dataclass
class ChargeStep:
    """Run ``inner`` for a job that charges (optionally only for some actions); a no-op otherwise."""

    inner: Stage
    actions: frozenset[str] | None = None
    #: The charge stage: the customer's booked credit (``PrepareOutput.credit``) pays what it covers first.
    with_credit: bool = False
    name: str = field(init=False)
    persist_before: bool = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.inner.name
        # The charge's decisions (fraud, VAT) are committed before it, as in the payment pipeline.
        self.persist_before = bool(getattr(self.inner, "persist_before", False))

    @staticmethod
    def around(inner: Factory, actions: Iterable[str] | None = None, *, with_credit: bool = False) -> ChargeStepFactory:
        """The stage factory of ``inner`` (a payment stage's factory) wrapped in a :class:`ChargeStep`."""
        return ChargeStepFactory(inner, frozenset(actions) if actions is not None else None, with_credit)

    def run(self, job: Job) -> StageResult:
        decision = job.output_or_none(PrepareOutput)
        if (
            decision is None
            or not decision.charge
            or (self.actions is not None and decision.action not in self.actions)
        ):
            return StageResult()
        job_for_inner = dataclasses.replace(job, request=charge_request(job, decision))
        if self.with_credit and decision.credit:
            lowered = _less_credit(job_for_inner, decision.credit)
            if lowered is None:
                return StageResult()  # the credit pays it all: nothing to charge at Stripe
            job_for_inner = lowered
        result = self.inner.run(job_for_inner)
        if result.status == "requires_action" and decision.action == "renew":
            # A renewal is off-session: nobody is there to authenticate, so it counts as a failed attempt, and its
            # intent is canceled (else the customer could still complete it and dunning would charge again).
            error = {"code": "authentication_required", "message": "The renewal needs the customer to authenticate."}
            give_up = getattr(self.inner, "give_up", None)
            assert callable(give_up), "the charge stage must be able to give a parked charge up"
            result = give_up(job_for_inner, result, error)
        if result.status == "failed":
            return self._declined(job, decision, result)
        return result

    def _declined(self, job: Job, decision: PrepareOutput, result: StageResult) -> StageResult:
        change = decision.decline
        public = dict(result.public)
        # With no decline change (a declined upgrade) this is the subscription as it was: the old plan stays.
        public["subscription"] = decision.after_decline
        if not change:
            return dataclasses.replace(result, public=public)
        sub_id = decision.subscription
        assert sub_id is not None
        event = decision.decline_event
        create = decision.create
        previous = result.write

        def write(conn: sa.Connection) -> None:
            if previous is not None:
                previous(conn)
            repo.apply(conn, sub_id, change, create=create)
            if event:
                row = repo.get(conn, sub_id)
                assert row is not None
                repo.notify(conn, row, event, f"subscription:{sub_id}:{job.id}:{event}", job.id)

        return dataclasses.replace(result, public=public, write=write)


def _less_credit(job: Job, credit: int) -> Job | None:
    """``job`` as the charge stage sees it when ``credit`` pays part of the VAT total first (the VAT output's
    ``total`` lowered by :func:`credit_to_apply`), or None when the credit pays all of it.  Deterministic: the
    decision and the VAT split were committed before the charge, so every delivery charges the same amount."""
    vat = job.output(VatOutput)
    applied = credit_to_apply(credit, vat.total, vat.currency)
    if applied == 0:
        return job
    if applied >= vat.total:
        return None
    lowered = {**job.stage_results[VatOutput.STAGE], "total": vat.total - applied}
    return dataclasses.replace(job, stage_results={**job.stage_results, VatOutput.STAGE: lowered})


@dataclass(frozen=True)
class ChargeStepFactory:
    """Builds a :class:`ChargeStep` around the stage ``inner`` builds (the container builds ``inner`` by name)."""

    inner: Factory
    actions: frozenset[str] | None = None
    with_credit: bool = False

    @property
    def name(self) -> str:
        return stage_name(self.inner)

    def __call__(self, build: Callable[..., Any]) -> ChargeStep:
        return ChargeStep(build(self.inner), self.actions, self.with_credit)
