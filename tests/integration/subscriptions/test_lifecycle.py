"""The subscription lifecycle through the API and the worker: first charge, decline, dunning, proration, trial,
cancel, payment method; every route's roles and errors."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from engine.db.ledger import verify
from engine.db.tables import outbox
from pipelines.subscription.billing import add_intervals
from tests.integration.subscriptions.conftest import World


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def half_up(numerator: int, denominator: int) -> int:
    """Round a non-negative fraction half up, independently of the engine's helpers."""
    return (2 * numerator + denominator) // (2 * denominator)


def events(world: World, subscription_id: str) -> list[str]:
    with world.c.db.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.event_type, outbox.c.payload)
            .where(outbox.c.event_type.like("subscription.%"))
            .order_by(outbox.c.id)
        ).all()
    return [t for t, payload in rows if payload["id"] == subscription_id]


def test_a_declined_first_charge_fails_the_job_and_cancels(world: World) -> None:
    accepted = world.subscribe("pro-monthly", pm="pm_card_chargeDeclinedInsufficientFunds")
    [job] = world.work()
    assert job.status == "failed"
    assert job.error == {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": job.error["message"],  # type: ignore[index]
    }
    sub = world.get(accepted["subscription"]["id"])
    assert sub["status"] == "canceled"
    assert world.job(job.id).view()["subscription"]["status"] == "canceled"
    assert [r for r in world.invoices() if r["job_id"] == job.id] == []
    assert events(world, sub["id"]) == ["subscription.canceled"]


def test_a_card_that_starts_declining_goes_past_due_then_canceled(world: World) -> None:
    accepted = world.subscribe("basic-monthly")
    sub_id = accepted["subscription"]["id"]
    [first] = world.work()
    assert first.status == "succeeded"
    sub = world.get(sub_id)
    renewal_at = parse(sub["current_period_end"])
    world.sim(decline_payment_methods={"pm_card_visa": "insufficient_funds"})
    failed_jobs: list[str] = []

    def attempt(now: datetime) -> str:
        reports = world.schedulers(now, count=2)
        assert sorted(r.split()[0] for r in reports) in (["0", "0"], ["0", "1"]), reports
        jobs = world.work()
        assert len(jobs) == 1 and jobs[0].status == "failed", jobs
        assert jobs[0].error and jobs[0].error["decline_code"] == "insufficient_funds"
        failed_jobs.append(jobs[0].id)
        return str(world.get(sub_id)["status"])

    assert attempt(renewal_at + timedelta(minutes=1)) == "past_due"
    # The period moved on while the invoice is being dunned (as on Stripe).
    assert parse(world.get(sub_id)["current_period_start"]) == renewal_at
    # Not yet due: retries follow PAYMENTS_DUNNING_SCHEDULE_DAYS=1,3,5 counted from the failed renewal.
    for early in (timedelta(hours=23), timedelta(days=2, hours=23), timedelta(days=4, hours=23)):
        assert world.schedulers(renewal_at + early, count=1)[0].startswith("0 renewal(s) and 0 dunning")
        assert world.receive() == []
        attempt(renewal_at + early + timedelta(hours=2))
    assert world.get(sub_id)["status"] == "canceled"
    assert world.schedulers(renewal_at + timedelta(days=40), count=1)[0].startswith("0 renewal(s) and 0 dunning")
    assert events(world, sub_id) == ["subscription.created"] + ["subscription.past_due"] * 3 + ["subscription.canceled"]
    with world.c.db.connect() as conn:
        failed = conn.execute(
            sa.select(outbox.c.job_id).where(outbox.c.event_type == "job.failed", outbox.c.job_id.in_(failed_jobs))
        ).scalars()
        assert sorted(failed) == sorted(failed_jobs)
    assert len(failed_jobs) == 4
    assert verify(world.c.db).ok


def test_a_new_payment_method_recovers_a_past_due_subscription(world: World) -> None:
    accepted = world.subscribe("basic-monthly")
    sub_id = accepted["subscription"]["id"]
    world.work()
    renewal_at = parse(world.get(sub_id)["current_period_end"])
    world.sim(decline_payment_methods={"pm_card_visa": "insufficient_funds"})
    world.schedulers(renewal_at, count=1)
    world.work()
    assert world.get(sub_id)["status"] == "past_due"
    world.post(f"/v1/subscriptions/{sub_id}/payment_method", {"payment_method": "pm_card_mastercard"})
    [changed] = world.work()
    assert changed.status == "succeeded"
    world.schedulers(renewal_at + timedelta(days=1), count=1)
    [retry] = world.work()
    assert retry.status == "succeeded", retry.error
    sub = world.get(sub_id)
    assert sub["status"] == "active" and parse(sub["current_period_start"]) == renewal_at
    assert [r["number"] for r in world.invoices() if r["job_id"] == retry.id]
    # Paid: nothing more to retry.
    assert world.schedulers(renewal_at + timedelta(days=3), count=1)[0].startswith("0 renewal(s) and 0 dunning")


def test_an_upgrade_charges_the_prorated_difference_and_a_downgrade_credits_the_renewal(world: World) -> None:
    accepted = world.subscribe("basic-monthly")
    sub_id = accepted["subscription"]["id"]
    world.work()
    sub = world.get(sub_id)
    start, end = parse(sub["current_period_start"]), parse(sub["current_period_end"])
    period = int((end - start).total_seconds())
    at = start + timedelta(days=10, seconds=12_345)
    upgrade = world.post(
        f"/v1/subscriptions/{sub_id}/change", {"plan": "pro-monthly", "proration_date": int(at.timestamp())}
    )
    [job] = world.work()
    assert job.id == upgrade["id"] and job.status == "succeeded", job.error
    net = half_up((2900 - 900) * int((end - at).total_seconds()), period)
    vat = half_up(net * 23, 100)
    [intent] = world.intents({job.id})
    assert intent["amount"] == net + vat and intent["status"] == "succeeded"
    view = world.job(job.id).view()
    assert view["amounts"] == {"net": net, "vat": vat, "total": net + vat, "currency": "eur"}
    assert view["subscription"]["plan"] == "pro-monthly" and view["invoice"]["number"]
    after = world.get(sub_id)
    assert after["plan"] == "pro-monthly" and after["current_period_end"] == sub["current_period_end"]

    # Downgrade five days before the end: nothing charged now, the credit reduces the next renewal.
    down_at = end - timedelta(days=5)
    world.post(
        f"/v1/subscriptions/{sub_id}/change", {"plan": "basic-monthly", "proration_date": int(down_at.timestamp())}
    )
    [down] = world.work()
    assert down.status == "succeeded" and world.intents({down.id}) == []
    credit = half_up(2000 * 5 * 86400, period)
    credit_vat = half_up(credit * 23, 100)
    world.schedulers(end + timedelta(minutes=1), count=1)
    [renewal] = world.work()
    assert renewal.status == "succeeded", renewal.error
    # The renewal is invoiced in full; the credit (with its VAT, credited by the downgrade's credit note) pays part.
    [renewal_intent] = world.intents({renewal.id})
    assert renewal_intent["amount"] == 1107 - credit - credit_vat
    [invoice] = [r for r in world.invoices() if r["job_id"] == renewal.id]
    assert [line["amount"] for line in invoice["document"]["lines"]] == [900]
    assert invoice["document"]["credit_applied"] == credit + credit_vat
    assert verify(world.c.db).ok


def test_trial_then_first_charge_and_cancel_at_period_end(world: World) -> None:
    accepted = world.subscribe("pro-monthly-trial")
    sub_id = accepted["subscription"]["id"]
    [job] = world.work()
    assert job.status == "succeeded" and world.intents({job.id}) == []
    sub = world.get(sub_id)
    trial_end = parse(sub["current_period_end"])
    assert sub["status"] == "trialing" and trial_end - parse(sub["current_period_start"]) == timedelta(days=14)
    world.schedulers(trial_end + timedelta(seconds=1), count=1)
    [first] = world.work()
    assert first.status == "succeeded"
    sub = world.get(sub_id)
    assert sub["status"] == "active" and parse(sub["current_period_start"]) == trial_end
    assert parse(sub["current_period_end"]) == add_intervals(trial_end, "month", 1)
    assert [pi["amount"] for pi in world.intents({first.id})] == [2900 + 667]

    world.post(f"/v1/subscriptions/{sub_id}/cancel", {}, role="support")
    [cancel] = world.work()
    assert cancel.status == "succeeded"
    assert world.get(sub_id)["cancel_at_period_end"] is True and world.get(sub_id)["status"] == "active"
    period_end = parse(sub["current_period_end"])
    assert world.schedulers(period_end - timedelta(seconds=1), count=1)[0].endswith("0 canceled at period end")
    report = world.schedulers(period_end, count=2)
    assert sorted(r.split(", ")[-1] for r in report) == ["0 canceled at period end", "1 canceled at period end"]
    assert world.receive() == []  # no renewal for a subscription that ends
    assert world.get(sub_id)["status"] == "canceled"


def test_cancel_now_and_the_routes_errors(world: World) -> None:
    accepted = world.subscribe("basic-monthly")
    sub_id = accepted["subscription"]["id"]
    world.work()
    api = world.api
    assert api.get(f"/v1/subscriptions/{sub_id}").status_code == 401
    assert api.post("/v1/subscriptions", json={}, headers=world.headers("viewer")).status_code == 403
    assert api.post(f"/v1/subscriptions/{sub_id}/change", json={}, headers=world.headers("support")).status_code == 403
    no_key = world.headers()
    del no_key["Idempotency-Key"]
    assert api.post(f"/v1/subscriptions/{sub_id}/cancel", json={}, headers=no_key).status_code == 400
    bad_plan = api.post(f"/v1/subscriptions/{sub_id}/change", json={"plan": "gold"}, headers=world.headers())
    assert bad_plan.status_code == 422 and bad_plan.json()["error"]["param"] == "plan"
    customer = {"id": "c1", "email": "a@b.ie", "country": "IE"}
    body = {"customer": customer, "plan": "basic-monthly", "payment_method": "pm_card_visa", "coupon": "x"}
    assert api.post("/v1/subscriptions", json=body, headers=world.headers()).json()["error"]["param"] == "coupon"
    missing = api.post("/v1/subscriptions/sub_nope/cancel", json={}, headers=world.headers())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api.get("/v1/subscriptions/sub_nope", headers=world.headers("viewer")).status_code == 404

    headers = world.headers("admin")
    first = api.post(f"/v1/subscriptions/{sub_id}/cancel", json={"at_period_end": False}, headers=headers)
    replay = api.post(f"/v1/subscriptions/{sub_id}/cancel", json={"at_period_end": False}, headers=headers)
    assert first.status_code == replay.status_code == 202 and first.json()["id"] == replay.json()["id"]
    reused = api.post(f"/v1/subscriptions/{sub_id}/cancel", json={"at_period_end": True}, headers=headers)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert first.json()["kind"] == "subscription" and first.json()["subscription"]["id"] == sub_id
    [job] = world.work()
    assert job.status == "succeeded"
    sub = world.get(sub_id)
    assert sub["status"] == "canceled" and sub["cancel_at_period_end"] is False
    assert set(sub) == {
        "id",
        "object",
        "customer",
        "plan",
        "status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
    }
    later = parse(sub["current_period_end"]) + timedelta(days=1)
    assert (
        world.schedulers(later, count=1)[0]
        == "0 renewal(s) and 0 dunning retry(ies) enqueued, 0 canceled at period end"
    )
    world.post(f"/v1/subscriptions/{sub_id}/change", {"plan": "pro-monthly"})
    [refused] = world.work()
    assert refused.status == "failed" and refused.error and refused.error["code"] == "subscription_canceled"


def test_a_declined_upgrade_changes_nothing(world: World) -> None:
    accepted = world.subscribe("basic-monthly")
    sub_id = accepted["subscription"]["id"]
    world.work()
    before = world.get(sub_id)
    world.sim(decline_payment_methods={"pm_card_visa": "card_declined"})
    world.post(f"/v1/subscriptions/{sub_id}/change", {"plan": "pro-monthly"})
    [job] = world.work()
    assert job.status == "failed" and job.error and job.error["code"] == "card_declined"
    assert world.get(sub_id) == before
    assert world.job(job.id).view()["subscription"]["plan"] == "basic-monthly"
    assert [r for r in world.invoices() if r["job_id"] == job.id] == []


def test_a_subscription_charge_books_stripes_fee_once(world: World) -> None:
    """The first charge of a subscription books Stripe's fee from the charge's balance transaction (Dr fees, Cr
    stripe_clearing), as a payment does, so clearing follows what Stripe pays out; running the job again adds
    nothing."""
    from engine.db.tables import ledger_entries, ledger_transactions

    world.subscribe()
    [job] = world.work()
    assert job.status == "succeeded"
    [intent] = world.intents({job.id})
    fee = (intent["amount"] * 325 + 5000) // 10000 + 25  # pm_card_visa: a US card, 3.25 % + 0.25

    def fees() -> list[tuple[str, int]]:
        with world.c.db.connect() as conn:
            rows = conn.execute(
                sa.select(ledger_entries.c.account, ledger_entries.c.amount)
                .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
                .where(ledger_transactions.c.effect_key == f"subscription:{job.id}:fee")
            ).all()
        return sorted((str(a), int(n)) for a, n in rows)

    assert fees() == [("fees", fee), ("stripe_clearing", -fee)]
    assert verify(world.c.db).ok
