"""3-D Secure on subscription charges (issue 15 item 1), against the Stripe sandbox: a create (or an upgrade) parked
``requires_action`` is resumed by the ``payment_intent.succeeded`` webhook or, with no webhook, by the janitor, and
ends ``active`` with one charge, one invoice and its ledger postings; an off-session renewal that would need the
customer is given up and its PaymentIntent canceled, even when two copies of the job race or one is redelivered."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from engine.broker.envelope import Envelope
from engine.db.ledger import verify
from engine.db.tables import ledger_transactions
from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult
from pipelines.payment.charge import ChargeStage
from pipelines.webhook import janitor
from pipelines.webhook.context import HandlerContext
from pipelines.webhook.payment_intent import handle
from tests.integration.subscriptions.conftest import World

THREE_DS = "pm_card_threeDSecure2Required"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def authenticate(world: World, intent: str, result: str = "succeeded") -> None:
    answer = httpx.post(f"{world.sandbox.base_url}/_sim/payment_intents/{intent}/authenticate", json={"result": result})
    assert answer.status_code == 200, answer.text


def intent_event(world: World, event_type: str, intent: str) -> dict[str, Any]:
    data = httpx.get(f"{world.sandbox.base_url}/_sim/events").json()["data"]
    return next(e for e in data if e["type"] == event_type and e["data"]["object"]["id"] == intent)


def parked_create(world: World) -> tuple[str, Job, str]:
    """A subscription whose first charge waits for 3-D Secure: (subscription id, job, intent id)."""
    accepted = world.subscribe("basic-monthly", pm=THREE_DS)
    sub_id = accepted["subscription"]["id"]
    [job] = world.work()
    assert job.status == "requires_action", job.error
    assert world.get(sub_id)["status"] == "incomplete"
    view = world.job(job.id).view()
    intent = view["stripe"]["payment_intent"]
    assert view["stripe"]["client_secret"] and view["next_action"]
    return sub_id, job, intent


def assert_activated_once(world: World, sub_id: str, job: Job) -> None:
    """The subscription is active; its job charged once, has one invoice and its two ledger postings."""
    done = world.job(job.id)
    assert done.status == "succeeded" and done.stage == "notify", done.error
    assert world.get(sub_id)["status"] == "active"
    view = done.view()
    assert view["next_action"] is None and view["subscription"]["status"] == "active"
    charges = httpx.get(f"{world.sandbox.base_url}/_sim/charges", params={"job_id": job.id}).json()["data"]
    assert [c["status"] for c in charges] == ["succeeded"]
    assert [pi["status"] for pi in world.intents({job.id})] == ["succeeded"]
    assert len([r for r in world.invoices() if r["job_id"] == job.id]) == 1
    with world.c.db.connect() as conn:
        keys = sorted(
            conn.execute(
                sa.select(ledger_transactions.c.effect_key).where(
                    ledger_transactions.c.effect_key.like(f"subscription:{job.id}:%")
                )
            ).scalars()
        )
    # Each posting once: the invoice issued and paid (and the Stripe fee of the charge, where it is booked).
    assert len(keys) == len(set(keys))
    assert {f"subscription:{job.id}:invoice", f"subscription:{job.id}:paid"} <= set(keys)
    assert verify(world.c.db).ok


def test_a_create_with_three_d_secure_is_activated_by_the_webhook(world: World) -> None:
    sub_id, job, intent = parked_create(world)
    authenticate(world, intent)
    ctx = HandlerContext(world.c.db, world.c.broker, world.c.stripe, "webhook-test")
    event = intent_event(world, "payment_intent.succeeded", intent)
    assert handle(ctx, event)["outcome"] == "resumed"
    # A duplicate delivery changes nothing: the job is no longer parked.
    assert handle(ctx, event)["outcome"] == "pending"
    [resumed] = world.work()
    assert resumed.id == job.id
    assert_activated_once(world, sub_id, job)
    assert handle(ctx, event)["outcome"] == "settled"
    assert world.receive() == []


def test_a_create_with_three_d_secure_is_activated_by_the_janitor_without_a_webhook(world: World) -> None:
    sub_id, job, intent = parked_create(world)
    authenticate(world, intent)
    # Not due yet: the janitor leaves a freshly parked job to its webhook.
    assert world.c.build(janitor.run, now=datetime.now(UTC)).endswith("0 resumed")
    later = datetime.now(UTC) + timedelta(seconds=janitor.REPOLL_AFTER_SECONDS + 5)
    report = world.c.build(janitor.run, now=later)
    assert "1 resumed" in report, report
    assert world.c.build(janitor.run, now=later).endswith("0 resumed")  # a second pass: nothing parked any more
    world.work()
    assert_activated_once(world, sub_id, job)


def test_a_failed_authentication_cancels_the_new_subscription(world: World) -> None:
    sub_id, job, intent = parked_create(world)
    authenticate(world, intent, "failed")
    ctx = HandlerContext(world.c.db, world.c.broker, world.c.stripe, "webhook-test")
    assert handle(ctx, intent_event(world, "payment_intent.payment_failed", intent))["outcome"] == "resumed"
    [failed] = world.work()
    assert failed.status == "failed" and failed.error["code"] == "payment_intent_authentication_failure"  # type: ignore[index]
    assert world.get(sub_id)["status"] == "canceled"
    assert [r for r in world.invoices() if r["job_id"] == job.id] == []
    assert verify(world.c.db).ok


def _renewal_needing_authentication(world: World) -> tuple[str, datetime]:
    sub_id, _job, intent = parked_create(world)
    authenticate(world, intent)
    handle(
        HandlerContext(world.c.db, world.c.broker, world.c.stripe, "t"),
        intent_event(world, "payment_intent.succeeded", intent),
    )
    world.work()
    assert world.get(sub_id)["status"] == "active"
    return sub_id, parse(world.get(sub_id)["current_period_end"])


def test_a_renewal_that_needs_the_customer_is_given_up_and_its_intent_canceled(world: World) -> None:
    sub_id, renewal_at = _renewal_needing_authentication(world)
    world.schedulers(renewal_at + timedelta(minutes=1), count=1)
    [renewal] = world.work()
    assert renewal.status == "failed" and renewal.error["code"] == "authentication_required"  # type: ignore[index]
    assert world.get(sub_id)["status"] == "past_due"
    [pi] = world.intents({renewal.id})
    assert pi["status"] == "canceled"
    view = world.job(renewal.id).view()
    assert "client_secret" not in view.get("stripe", {}) and not view.get("next_action")
    # The customer cannot complete it any more: nothing is charged, nothing booked for the renewal.
    refused = httpx.post(
        f"{world.sandbox.base_url}/_sim/payment_intents/{pi['id']}/authenticate", json={"result": "succeeded"}
    )
    assert refused.status_code >= 400
    charges = httpx.get(f"{world.sandbox.base_url}/_sim/charges", params={"job_id": renewal.id}).json()["data"]
    assert [c for c in charges if c["status"] == "succeeded"] == []
    assert [r for r in world.invoices() if r["job_id"] == renewal.id] == []
    assert verify(world.c.db).ok


def test_two_copies_of_a_given_up_renewal_cancel_one_intent_once(world: World) -> None:
    sub_id, renewal_at = _renewal_needing_authentication(world)
    world.schedulers(renewal_at + timedelta(minutes=1), count=1)
    [envelope] = world.receive()
    barrier = threading.Barrier(2)
    results: list[Job] = []

    def copy() -> None:
        barrier.wait()
        results.append(world.c.run_job("subscription", envelope))

    threads = [threading.Thread(target=copy) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # A redelivery after both: the job has settled, nothing runs again.
    results.append(world.c.run_job("subscription", envelope))
    job_id = results[0].id
    final = world.job(job_id)
    assert final.status == "failed" and final.error["code"] == "authentication_required"  # type: ignore[index]
    [pi] = world.intents({job_id})
    assert pi["status"] == "canceled"
    assert world.get(sub_id)["status"] == "past_due"
    assert verify(world.c.db).ok


class WorkerDied(BaseException):
    """Stands for a SIGKILL: nothing after it runs, nothing of the worker's transaction commits."""


def test_a_worker_dying_after_the_cancel_leaves_one_canceled_intent_on_redelivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub_id, renewal_at = _renewal_needing_authentication(world)
    world.schedulers(renewal_at + timedelta(minutes=1), count=1)
    [envelope] = world.receive()
    real = ChargeStage.give_up

    def dies_after_cancel(self: ChargeStage, job: Job, parked: StageResult, error: dict[str, Any]) -> StageResult:
        real(self, job, parked, error)
        raise WorkerDied()

    monkeypatch.setattr(ChargeStage, "give_up", dies_after_cancel)
    with pytest.raises(WorkerDied):
        world.c.run_job("subscription", envelope)
    monkeypatch.undo()
    # The intent is canceled at Stripe, the job knows nothing of it yet.
    job_id = world.c.ensure_job(Envelope.model_validate(envelope)).id
    assert [pi["status"] for pi in world.intents({job_id})] == ["canceled"]
    assert world.job(job_id).status in ("accepted", "processing")
    redelivered = world.c.run_job("subscription", envelope)
    assert redelivered.status == "failed" and redelivered.error["code"] == "authentication_required"  # type: ignore[index]
    assert [pi["status"] for pi in world.intents({job_id})] == ["canceled"]  # the same intent, no second one
    assert world.get(sub_id)["status"] == "past_due"
    assert verify(world.c.db).ok


def test_an_upgrade_with_three_d_secure_keeps_the_old_plan_until_authenticated(world: World) -> None:
    accepted = world.subscribe("basic-monthly")
    sub_id = accepted["subscription"]["id"]
    world.work()
    world.post(f"/v1/subscriptions/{sub_id}/payment_method", {"payment_method": THREE_DS})
    world.work()
    upgrade = world.post(f"/v1/subscriptions/{sub_id}/change", {"plan": "pro-monthly"})
    [parked] = world.work()
    assert parked.id == upgrade["id"] and parked.status == "requires_action", parked.error
    assert world.get(sub_id)["plan"] == "basic-monthly"  # not upgraded before it is paid
    intent = world.job(parked.id).view()["stripe"]["payment_intent"]
    authenticate(world, intent)
    ctx = HandlerContext(world.c.db, world.c.broker, world.c.stripe, "webhook-test")
    assert handle(ctx, intent_event(world, "payment_intent.succeeded", intent))["outcome"] == "resumed"
    [done] = world.work()
    assert done.id == parked.id and done.status == "succeeded", done.error
    after = world.get(sub_id)
    assert after["plan"] == "pro-monthly" and after["status"] == "active"
    assert [pi["status"] for pi in world.intents({parked.id})] == ["succeeded"]
    assert len([r for r in world.invoices() if r["job_id"] == parked.id]) == 1
    assert verify(world.c.db).ok
