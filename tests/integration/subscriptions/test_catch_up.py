"""Renewals after downtime: a scheduler stopped for several periods bills every missed period in one pass, each
once and in order, under concurrent passes, a pass that crashes half-way, and a declined period in the middle."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.db.ledger import verify
from engine.db.tables_subscriptions import subscription_renewals
from engine.jobs.job import Job
from engine.jobs.resend import send_again
from pipelines.subscription import renewals
from pipelines.subscription.billing import add_intervals
from tests.integration.subscriptions.conftest import World
from tests.integration.subscriptions.test_renewals import assert_gap_free, parse


class Crash(BaseException):
    """The scheduler process dies (not an SQS error the pass would log and survive)."""


class CrashingBroker:
    """The container's broker, until the ``crash_on``-th enqueue kills the pass."""

    def __init__(self, inner: Any, crash_on: int) -> None:
        self.inner, self.crash_on, self.calls = inner, crash_on, 0

    def enqueue(self, message: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.crash_on:
            raise Crash
        return self.inner.enqueue(message, **kwargs)


def started(world: World, plan: str = "basic-monthly") -> tuple[str, datetime, Job]:
    accepted = world.subscribe(plan)
    [first] = world.work()
    assert first.status == "succeeded", first.error
    sub_id = accepted["subscription"]["id"]
    return sub_id, parse(world.get(sub_id)["current_period_start"]), first


def claims(world: World, sub_id: str) -> list[tuple[datetime, int]]:
    with world.c.db.connect() as conn:
        rows = conn.execute(
            sa.select(subscription_renewals.c.period_start, subscription_renewals.c.attempt)
            .where(subscription_renewals.c.subscription_id == sub_id)
            .order_by(subscription_renewals.c.period_start, subscription_renewals.c.attempt)
        ).all()
    return [(r[0], r[1]) for r in rows]


def paid_periods(world: World, jobs: list[Job]) -> list[str]:
    return [j.request["period_start"] for j in jobs if j.status == "succeeded"]


def test_three_missed_months_are_billed_in_one_pass_in_order_once(world: World) -> None:
    sub_id, anchor, first = started(world)
    months = [add_intervals(anchor, "month", n) for n in (1, 2, 3)]
    now = months[2] + timedelta(hours=1)

    reports = world.schedulers(now, count=2)
    assert sorted(r.split()[0] for r in reports) == ["0", "3"], reports
    assert world.schedulers(now, count=1)[0].startswith("0 renewal")  # a restarted scheduler
    jobs = world.work()
    assert [j.status for j in jobs] == ["succeeded"] * 3, [j.error for j in jobs]
    assert [parse(p) for p in paid_periods(world, jobs)] == months
    assert world.schedulers(now, count=1)[0].startswith("0 renewal")  # paid up: nothing due until the 4th month
    assert world.receive() == []

    sub = world.get(sub_id)
    assert sub["status"] == "active"
    assert parse(sub["current_period_start"]) == months[2]
    assert parse(sub["current_period_end"]) == add_intervals(anchor, "month", 4)
    assert claims(world, sub_id) == [(m, 1) for m in months]
    intents = world.intents({first.id, *(j.id for j in jobs)})
    assert len(intents) == 4 and {(pi["status"], pi["amount"]) for pi in intents} == {("succeeded", 1107)}
    rows = [r for r in world.invoices() if r["job_id"] in {j.id for j in jobs}]
    # Numbered in billing order, one per period, each period on its own invoice.
    assert [r["job_id"] for r in sorted(rows, key=lambda r: r["sequence"])] == [j.id for j in jobs]
    for row, start in zip(sorted(rows, key=lambda r: r["sequence"]), months, strict=True):
        assert row["document"]["lines"][0]["description"].endswith(
            f"{start.date().isoformat()} to {add_intervals(start, 'month', 1).date().isoformat()}"
        )
    assert_gap_free(world)
    assert verify(world.c.db).ok


def test_a_catch_up_is_bounded_per_pass(world: World) -> None:
    sub_id, anchor, _ = started(world)
    now = add_intervals(anchor, "month", renewals.CATCH_UP + 2) + timedelta(hours=1)
    assert world.schedulers(now, count=1)[0].startswith(f"{renewals.CATCH_UP} renewal(s)")
    assert len(world.work()) == renewals.CATCH_UP
    assert world.schedulers(now, count=1)[0].startswith("2 renewal(s)")
    assert [j.status for j in world.work()] == ["succeeded"] * 2
    sub = world.get(sub_id)
    assert parse(sub["current_period_start"]) == add_intervals(anchor, "month", renewals.CATCH_UP + 2)


def test_a_pass_that_dies_mid_catch_up_resumes_without_billing_twice(world: World) -> None:
    sub_id, anchor, first = started(world)
    months = [add_intervals(anchor, "month", n) for n in (1, 2, 3)]
    now = months[2] + timedelta(minutes=5)

    # The pass dies sending the second period: its job is recorded but not sent, the third not even claimed.
    crashing = CrashingBroker(world.c.broker, crash_on=2)
    try:
        world.c.build(renewals.run, now=now, broker=crashing)
    except Crash:
        pass
    else:  # pragma: no cover - the broker always crashes on the second send
        raise AssertionError("the pass did not crash")
    assert claims(world, sub_id) == [(months[0], 1), (months[1], 1)]
    [p1] = world.work()
    assert p1.status == "succeeded"
    # The restarted scheduler does not send the third period ahead of the stranded second one.
    assert world.schedulers(now, count=2)[0].startswith("0 renewal")
    assert world.receive() == []
    with world.c.db.connect() as conn:
        stranded_id = conn.execute(
            sa.select(subscription_renewals.c.job_id).where(
                subscription_renewals.c.subscription_id == sub_id, subscription_renewals.c.period_start == months[1]
            )
        ).scalar_one()
    stranded = world.job(stranded_id)
    assert stranded.status == "accepted"
    send_again(world.c.broker, stranded, ":reconcile:1")  # what the reconciler does with a job left accepted
    [p2] = world.work()
    assert p2.id == stranded_id and p2.status == "succeeded", p2.error
    reports = world.schedulers(now, count=2)
    assert sorted(r.split()[0] for r in reports) == ["0", "1"], reports
    [p3] = world.work()
    assert p3.status == "succeeded"
    assert [parse(j.request["period_start"]) for j in (p1, p2, p3)] == months
    assert world.schedulers(now, count=1)[0].startswith("0 renewal")
    intents = world.intents({first.id, p1.id, p2.id, p3.id})
    assert len(intents) == 4 and {pi["status"] for pi in intents} == {"succeeded"}
    assert parse(world.get(sub_id)["current_period_end"]) == add_intervals(anchor, "month", 4)
    assert_gap_free(world)
    assert verify(world.c.db).ok


def test_a_declined_period_holds_the_later_ones_until_dunning_pays_it(world: World) -> None:
    sub_id, anchor, first = started(world)
    months = [add_intervals(anchor, "month", n) for n in (1, 2, 3)]
    now = months[2] + timedelta(hours=2)
    assert world.schedulers(now, count=1)[0].startswith("3 renewal(s)")
    envelopes = world.receive()
    assert len(envelopes) == 3
    ran = [world.c.run_job("subscription", envelopes[0])]
    world.sim(decline_payment_methods={"pm_card_visa": "insufficient_funds"})
    ran += [world.c.run_job("subscription", e) for e in envelopes[1:]]
    world.sim(decline_payment_methods={})
    assert [j.status for j in ran] == ["succeeded", "failed", "failed"]
    assert ran[1].error and ran[1].error["decline_code"] == "insufficient_funds"
    # The third month charged nothing and gave its claim back; the second is being dunned.
    assert ran[2].error and ran[2].error["code"] == "renewal_not_due"
    assert world.intents({ran[2].id}) == []
    assert claims(world, sub_id) == [(months[0], 1), (months[1], 1)]
    assert world.get(sub_id)["status"] == "past_due"

    # The retry is due (the second month's start + 1 day): paid, active again, then the third month is billed.
    assert world.schedulers(now, count=1)[0].startswith("0 renewal(s) and 1 dunning")
    [retry] = world.work()
    assert retry.status == "succeeded", retry.error
    assert world.schedulers(now, count=1)[0].startswith("1 renewal(s)")
    [third] = world.work()
    assert third.status == "succeeded", third.error
    assert parse(third.request["period_start"]) == months[2]
    assert third.idempotency_scope.startswith(renewals.renewal_scope(sub_id, months[2], 1) + ":c")
    assert world.schedulers(now, count=1)[0].startswith("0 renewal(s) and 0 dunning")
    assert claims(world, sub_id) == [(months[0], 1), (months[1], 1), (months[1], 2), (months[2], 1)]
    sub = world.get(sub_id)
    assert sub["status"] == "active" and parse(sub["current_period_start"]) == months[2]
    succeeded = [pi for pi in world.intents({first.id, *(j.id for j in ran), retry.id, third.id})]
    assert sorted(pi["status"] for pi in succeeded).count("succeeded") == 4
    assert_gap_free(world)
    assert verify(world.c.db).ok
