"""Issue 15 item 2: subscription charges are refunded and disputed like payments.

Real database, SQS endpoint and Stripe sandbox (official SDK).  A subscription charge is the job that charged (the
create, a renewal, an upgrade): ``POST /v1/refunds`` names it by job id (``payment``) or by its PaymentIntent, the
refund pipeline refunds it exactly once with the VAT split in proportion to the charge's, and a refund made in the
Stripe dashboard or a dispute of the charge is booked once through the webhook.  Every test ends on the money
invariant: refunds never exceed the charge, the ledger books what Stripe refunded, the ledger verifies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from engine.broker.envelope import Envelope
from engine.db.ledger import verify
from engine.db.tables import ledger_entries, ledger_transactions, outbox
from engine.db.tables_credit_notes import credit_notes
from engine.invoices import store
from engine.invoices.credit_notes import store_pending
from engine.jobs.job import Job
from tests.fixtures.pdf import pdf_text
from tests.integration.refunds.helpers import entries_of, queued, refund_rows, sim_events, sim_refunds, stripe_client
from tests.integration.refunds.test_refund_exactly_once import WorkerKilled, _kill_after_create
from tests.integration.subscriptions.conftest import World
from tests.integration.subscriptions.test_lifecycle import half_up, parse

#: basic-monthly: EUR 9.00 net, Irish VAT 23 % → 2.07, charged 11.07.
NET, VAT, TOTAL = 900, 207, 1107


def _subscribed(world: World, plan: str = "basic-monthly", pm: str = "pm_card_visa") -> tuple[str, Job]:
    """A subscription whose first charge succeeded: its id and its create job."""
    accepted = world.subscribe(plan, pm=pm)
    [job] = world.work()
    assert job.status == "succeeded", job.error
    return accepted["subscription"]["id"], world.job(job.id)


def _intent(job: Job) -> str:
    return str(job.stage_results["charge"]["payment_intent"])


#: The refund jobs this process's tests accepted, and those not run yet.  The database is shared with other test
#: processes, whose outbox relays may take our dispatch rows (and put theirs on our queues): only ours are run, and
#: one whose message another relay took is run from its dispatch row.
_ACCEPTED: set[str] = set()
_NOT_RUN: set[str] = set()


def _refund(world: World, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    answer = world.api.post("/v1/refunds", json=body, headers=world.headers("support"))
    assert answer.status_code == status, answer.json()
    result: dict[str, Any] = answer.json()
    if status == 202:
        _ACCEPTED.add(result["id"])
        _NOT_RUN.add(result["id"])
    return result


def _refund_messages(world: World) -> list[dict[str, Any]]:
    """This test's refund messages on refunds.fifo, and the dispatched messages of accepted refunds not run yet."""
    mine = [m for m in queued(world.c, "refunds", wait=3) if m["job_id"] in _ACCEPTED]
    missing = sorted(_NOT_RUN - {m["job_id"] for m in mine})
    if missing:
        with world.c.db.connect() as conn:
            rows = conn.execute(
                sa.select(outbox.c.payload).where(outbox.c.event_key.in_([f"dispatch:{j}" for j in missing]))
            ).scalars()
            mine += [dict(r["envelope"]) for r in rows]
    _NOT_RUN.difference_update(m["job_id"] for m in mine)
    return mine


def _run_refunds(world: World) -> list[Job]:
    return [world.c.run_job("refund", m) for m in _refund_messages(world)]


def _balance(world: World, job_ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for account, value in entries_of(world.c, job_ids):
        out[account] = out.get(account, 0) + value
    return {k: v for k, v in out.items() if v}


def _live(world: World, charge_job: Job) -> list[dict[str, Any]]:
    return [r for r in sim_refunds(world.sandbox, _intent(charge_job)) if r["status"] in ("succeeded", "pending")]


def _booked_refunds(world: World, charge_job: Job) -> int:
    """What the ledger says was refunded of ``charge_job`` (credits to Stripe clearing by refund transactions)."""
    with world.c.db.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(ledger_entries.c.amount), 0))
            .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
            .where(
                ledger_transactions.c.kind == "refund",
                ledger_transactions.c.metadata["payment"].astext == charge_job.id,
                ledger_entries.c.account == "stripe_clearing",
            )
        ).scalar_one()
    return -int(value)


def _assert_money(world: World, charge_job: Job) -> None:
    """Refunds never exceed the charge; the refunds rows and the ledger's refund bookings equal Stripe's."""
    stripe_total = sum(r["amount"] for r in _live(world, charge_job))
    assert stripe_total <= charge_job.public["amounts"]["total"]
    rows = [r for r in refund_rows(world.c, charge_job.id) if r["status"] in ("pending", "succeeded")]
    assert sum(int(r["amount"]) for r in rows) == stripe_total
    assert _booked_refunds(world, charge_job) == stripe_total
    assert verify(world.c.db).ok


def _credit_notes(world: World, charge_job: Job) -> list[dict[str, Any]]:
    """The credit notes against ``charge_job``'s invoice, oldest first."""
    [invoice] = [r for r in world.invoices() if r["job_id"] == charge_job.id]
    with world.c.db.connect() as conn:
        rows = conn.execute(
            sa.select(credit_notes).where(credit_notes.c.invoice_id == invoice["id"]).order_by(credit_notes.c.id)
        ).mappings()
        return [dict(r) | {"invoiced": invoice["number"]} for r in rows]


def _webhook(world: World, event_type: str, object_id: str, again: bool = False) -> Job:
    """Run the webhook job of the newest sandbox event of ``event_type`` about ``object_id`` (``again``: as another
    event carrying the same object, which the ingest's event-id check does not stop)."""
    event = [e for e in sim_events(world.sandbox, event_type) if e["data"]["object"]["id"] == object_id][-1]
    if again:
        event = {**event, "id": f"{event['id']}_again"}
    envelope = Envelope.new(
        kind="webhook", data=event, idempotency_scope=f"stripe:event:{event['id']}", group_id=object_id
    ).to_arg()
    return world.c.run_job("webhook", envelope)


def test_a_create_charge_is_refunded_partly_then_fully_through_the_api(world: World) -> None:
    _, create = _subscribed(world)
    assert create.public["amounts"] == {"net": NET, "vat": VAT, "total": TOTAL, "currency": "eur"}
    partial = _refund(world, {"payment": create.id, "amount": 500})
    assert partial["refund"] == {"payment": create.id, "amount": 500, "currency": "eur"}
    # The rest, named by the PaymentIntent the create job made (as Stripe's refunds are).
    rest = _refund(world, {"payment_intent": _intent(create)})
    assert rest["refund"]["payment"] == create.id
    done = _run_refunds(world)
    assert [j.status for j in done] == ["succeeded", "succeeded"], [j.error for j in done]
    views = {j.id: world.job(j.id).view() for j in done}
    # Cumulative proportional VAT: 207 × 500 / 1107 = 93.49 → 93; the last refund takes exactly what is left.
    assert views[partial["id"]]["amounts"] == {"net": 407, "vat": 93, "total": 500, "currency": "eur"}
    assert views[rest["id"]]["amounts"] == {"net": 493, "vat": 114, "total": 607, "currency": "eur"}
    assert views[partial["id"]]["vat"] == {"country": "IE", "rate": "23", "scheme": "domestic"}
    # The ledger: revenue and the IE VAT of the charge are fully reversed; one booking per refund.
    balance = _balance(world, [create.id, partial["id"], rest["id"]])
    assert balance["refunds"] == NET and balance["revenue"] == -NET
    assert "vat_payable:IE" not in balance
    assert balance["stripe_clearing"] == -balance["fees"]
    made = _live(world, create)
    assert sorted(r["metadata"]["job_id"] for r in made) == sorted([partial["id"], rest["id"]])
    # One credit note per refund, against the create's invoice, with the refund's split; consecutive numbers.
    notes = _credit_notes(world, create)
    assert [(n["key"], n["net"], n["vat"], n["total"]) for n in notes] == [
        (f"refund:{partial['id']}", 407, 93, 500),
        (f"refund:{rest['id']}", 493, 114, 607),
    ]
    assert all(n["invoice_number"] == n["invoiced"] and n["vat_country"] == "IE" for n in notes)
    first, second = (int(n["number"].rsplit("-", 1)[1]) for n in notes)
    assert second == first + 1 and notes[0]["number"].startswith("CN-")
    assert views[partial["id"]]["credit_note"] == {
        "number": notes[0]["number"],
        "invoice": notes[0]["invoiced"],
        "s3_key": notes[0]["s3_key"],
    }
    # Their PDFs are stored by the credit-notes task, once the bookings are committed.
    assert all(n["stored_at"] is None for n in notes)
    # (The database is shared: the pass may store other tests' credit notes too.)
    assert "credit note(s) stored" in world.c.build(store_pending)
    text = pdf_text(store.get_pdf(world.c.s3, world.c.settings, notes[0]["s3_key"]))
    assert f"Credit note {notes[0]['number']}" in text and f"Credits invoice {notes[0]['invoiced']}" in text
    assert "4.07" in text and "0.93" in text and "5.00" in text
    assert all(n["stored_at"] is not None for n in _credit_notes(world, create))
    # Nothing remains: refused at once with the remaining amount.
    over = _refund(world, {"payment": create.id, "amount": 1}, status=422)["error"]
    assert over["code"] == "refund_exceeds_captured" and "0.00" in over["message"]
    _assert_money(world, create)


def test_a_renewal_charge_is_refunded_on_its_own(world: World) -> None:
    sub_id, create = _subscribed(world)
    renew_at = parse(world.get(sub_id)["current_period_end"]) + timedelta(minutes=1)
    world.schedulers(renew_at, count=1)
    [renewal] = world.work()
    assert renewal.status == "succeeded", renewal.error
    renewal = world.job(renewal.id)
    assert _intent(renewal) != _intent(create)
    too_much = _refund(world, {"payment": renewal.id, "amount": TOTAL + 1}, status=422)["error"]
    assert too_much["code"] == "refund_exceeds_captured"
    assert "11.07" in too_much["message"] and "1107 minor units" in too_much["message"]
    accepted = _refund(world, {"payment": renewal.id})
    [done] = _run_refunds(world)
    assert done.id == accepted["id"] and done.status == "succeeded", done.error
    assert world.job(done.id).view()["amounts"] == {"net": NET, "vat": VAT, "total": TOTAL, "currency": "eur"}
    # Only the renewal's charge was refunded; the create's is untouched.
    assert [r["metadata"]["job_id"] for r in _live(world, renewal)] == [done.id]
    assert _live(world, create) == []
    assert refund_rows(world.c, create.id) == []
    [note] = _credit_notes(world, renewal)
    assert (note["net"], note["vat"], note["key"]) == (NET, VAT, f"refund:{done.id}")
    assert _credit_notes(world, create) == []
    _assert_money(world, renewal)


def test_a_subscription_job_that_charged_nothing_is_refused(world: World) -> None:
    sub_id, create = _subscribed(world)
    cancel = world.post(f"/v1/subscriptions/{sub_id}/cancel", {"at_period_end": True})
    [canceled] = world.work()
    assert canceled.status == "succeeded" and canceled.id == cancel["id"]
    refused = _refund(world, {"payment": canceled.id}, status=422)["error"]
    assert refused["code"] == "payment_not_captured"
    # Enqueued upstream anyway: the job fails the same way, Stripe is not asked.
    envelope = Envelope.new(
        kind="refund", data={"payment": canceled.id}, idempotency_scope=f"test:{canceled.id}", group_id="g"
    ).to_arg()
    failed = world.c.run_job("refund", envelope)
    assert failed.status == "failed" and failed.error and failed.error["code"] == "payment_not_captured"
    unknown = _refund(world, {"payment_intent": "pi_unknown"}, status=404)["error"]
    assert unknown["param"] == "payment_intent"
    neither = _refund(world, {"amount": 100}, status=422)["error"]
    assert neither["code"] == "validation_error"
    assert _live(world, create) == []


def test_a_dashboard_refund_of_a_subscription_charge_is_booked_once(world: World) -> None:
    _, create = _subscribed(world)
    refund = stripe_client(world.sandbox).v1.refunds.create(params={"payment_intent": _intent(create), "amount": 300})
    charge = create.stage_results["charge"]["charge"]
    first = _webhook(world, "charge.refunded", charge)
    assert first.stage_results["handle"]["outcome"] == "booked", first.stage_results
    again = _webhook(world, "charge.refunded", charge, again=True)
    assert again.stage_results["handle"]["outcome"] == "nothing_new"
    [row] = refund_rows(world.c, create.id)
    assert (row["id"], row["source"], row["amount"], row["vat"], row["net"]) == (refund.id, "stripe", 300, 56, 244)
    [note] = _credit_notes(world, create)
    assert (note["key"], note["net"], note["vat"], note["job_id"]) == (f"refund:{refund.id}", 244, 56, first.id)
    # It counts against what remains: 1107 − 300 left for the API.
    over = _refund(world, {"payment": create.id, "amount": 808}, status=422)["error"]
    assert "807 minor units" in over["message"]
    _assert_money(world, create)


@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_a_dispute_of_a_subscription_charge_is_booked_like_a_payments(world: World, outcome: str) -> None:
    _, create = _subscribed(world, pm="pm_card_fr")
    charge = create.stage_results["charge"]["charge"]
    opened = httpx.post(f"{world.sandbox.base_url}/_sim/charges/{charge}/dispute", json={"reason": "fraudulent"})
    assert opened.status_code == 200, opened.text
    dispute = opened.json()
    handled = _webhook(world, "charge.dispute.created", dispute["id"])
    assert handled.stage_results["handle"]["outcome"] == "booked", handled.stage_results
    customer = create.customer_id
    held = _balance(world, [create.id])
    assert held[f"receivable:{customer}"] == TOTAL
    httpx.post(f"{world.sandbox.base_url}/_sim/disputes/{dispute['id']}/close", json={"status": outcome})
    closed = _webhook(world, "charge.dispute.closed", dispute["id"])
    assert closed.stage_results["handle"]["outcome"] == "booked"
    after = _balance(world, [create.id])
    assert f"receivable:{customer}" not in after
    if outcome == "won":
        assert after["vat_payable:IE"] == -VAT and after["revenue"] == -NET
    else:
        # Lost: the charge's VAT is reduced in full, the net is a loss.
        assert "vat_payable:IE" not in after and after["dispute_losses"] == NET
    assert world.job(create.id).view()["dispute"]["status"] == outcome
    assert verify(world.c.db).ok


def test_a_worker_killed_after_stripe_refunded_a_subscription_charge_refunds_and_books_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, create = _subscribed(world)
    _refund(world, {"payment": create.id, "amount": 400})
    [message] = _refund_messages(world)
    made = _kill_after_create(world.c, monkeypatch)
    with pytest.raises(WorkerKilled):
        world.c.run_job("refund", message)
    assert [r["id"] for r in _live(world, create)] == made
    # The charge.refunded webhook may come first: it books the engine's refund from the job's reservation.
    booked = _webhook(world, "charge.refunded", create.stage_results["charge"]["charge"])
    assert booked.stage_results["handle"]["outcome"] == "booked"
    done = world.c.run_job("refund", message)  # redelivered
    assert done.status == "succeeded", done.error
    assert [r["id"] for r in _live(world, create)] == made, "refunded twice"
    [row] = refund_rows(world.c, create.id)
    assert (row["status"], row["stripe_refund_id"], row["amount"]) == ("succeeded", made[0], 400)
    with world.c.db.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM ledger_transactions WHERE effect_key = :k"), {"k": f"refund:{done.id}:issue"}
        ).scalar_one()
    assert count == 1
    [note] = _credit_notes(world, create)
    assert (note["key"], note["total"]) == (f"refund:{done.id}", 400)
    _assert_money(world, create)


def test_an_immediate_cancel_refunds_the_unused_share_when_the_plan_says_so(world: World) -> None:
    from engine.db.tables_subscriptions import subscriptions
    from pipelines.subscription import cancel_refunds

    refunds_queue = world.c.queues.for_kind("refund")
    assert refunds_queue is not None
    sub_id, create = _subscribed(world, plan="pro-yearly-refundable")  # EUR 290.00 + 23 % = 356.70 a year
    total = create.public["amounts"]["total"]
    assert total == 35670
    sub = world.get(sub_id)
    start, end = parse(sub["current_period_start"]), parse(sub["current_period_end"])
    accepted = world.post(f"/v1/subscriptions/{sub_id}/cancel", {"at_period_end": False})
    # The cancel is accepted 100 days and 7 hours into the year (its acceptance time is the cancel's moment).
    at = start + timedelta(days=100, hours=7)
    with world.c.db.begin() as conn:
        conn.execute(sa.text("UPDATE jobs SET created_at = :at WHERE id = :id"), {"at": at, "id": accepted["id"]})
    [canceled] = world.work()
    assert canceled.status == "succeeded", canceled.error
    unused = int((end - at).total_seconds())
    expected = half_up(total * unused, int((end - start).total_seconds()))
    [decided] = world.job(canceled.id).view()["refunds"]
    assert (decided["payment"], decided["amount"]) == (create.id, expected)
    assert world.get(sub_id)["status"] == "canceled"
    # Redone (a redelivery of the finished cancel): no second refund job.
    world.c.run_job("subscription", _envelope_of(world, canceled))
    # A copy of the cancel deciding again writes the same jobs: nothing new is inserted or dispatched.
    with world.c.db.connect() as conn:
        row = dict(conn.execute(sa.select(subscriptions).where(subscriptions.c.id == sub_id)).mappings().one())
        again = cancel_refunds.decide(conn, {**row, "status": "active"}, at, world.job(canceled.id), refunds_queue)
    assert [r.job.id for r in again] == [decided["job"]]
    with world.c.db.begin() as conn:
        cancel_refunds.write(conn, again)
    with world.c.db.connect() as conn:
        scoped = conn.execute(
            sa.text("SELECT count(*) FROM jobs WHERE idempotency_scope LIKE :s"),
            {"s": f"cancel-refund:{canceled.id}:%"},
        ).scalar_one()
    assert scoped == 1
    # The refund job was written with the cancel's commit, with one dispatch row: the message the outbox relay
    # sends to refunds.fifo (read here rather than relayed: the database is shared with other tests' relays).
    with world.c.db.connect() as conn:
        [payload] = conn.execute(
            sa.select(outbox.c.payload).where(outbox.c.event_key == f"dispatch:{decided['job']}")
        ).scalars()
    assert payload["queue"] == "refunds" and payload["envelope"]["job_id"] == decided["job"]
    done = world.c.run_job("refund", payload["envelope"])
    assert done.status == "succeeded", done.error
    view = world.job(done.id).view()
    assert view["amounts"]["total"] == expected
    assert view["amounts"]["vat"] == half_up(create.public["amounts"]["vat"] * expected, total)
    [note] = _credit_notes(world, create)
    assert (note["total"], note["key"]) == (expected, f"refund:{done.id}")
    assert [r["amount"] for r in _live(world, create)] == [expected]
    _assert_money(world, create)


def test_an_immediate_cancel_of_a_plan_without_refunds_refunds_nothing(world: World) -> None:
    sub_id, create = _subscribed(world)
    world.post(f"/v1/subscriptions/{sub_id}/cancel", {"at_period_end": False})
    [canceled] = world.work()
    assert canceled.status == "succeeded" and "refunds" not in world.job(canceled.id).view()
    assert refund_rows(world.c, create.id) == [] and _live(world, create) == []


def _envelope_of(world: World, job: Job) -> dict[str, Any]:
    return Envelope.new(
        kind=job.kind, data=job.request, idempotency_scope=job.idempotency_scope, group_id=job.group_id, job_id=job.id
    ).to_arg()


def test_a_three_d_secure_subscription_charge_refunded_by_api_and_dashboard_reconciles(world: World) -> None:
    """The issue's check: a subscription created with 3-D Secure, its charge refunded through POST /v1/refunds
    (accepted while the charge still waited for the customer: held, then released when the job settled) and
    through a dashboard refund, each booked once with VAT reversed; the ledger verifies and reconciles with
    Stripe."""
    from datetime import UTC, datetime

    from engine.ops.stripe_reconcile import reconcile_stripe
    from pipelines.webhook.context import HandlerContext
    from pipelines.webhook.payment_intent import handle
    from tests.integration.subscriptions.test_three_d_secure import authenticate, intent_event, parked_create

    since = datetime.now(UTC)
    sub_id, parked, intent = parked_create(world)
    accepted = _refund(world, {"payment_intent": intent, "amount": 600})
    [held] = _run_refunds(world)
    assert held.status == "processing" and world.job(held.id).view()["held"]["reason"] == "payment_not_settled"
    authenticate(world, intent)
    ctx = HandlerContext(world.c.db, world.c.broker, world.c.stripe, "webhook-test")
    assert handle(ctx, intent_event(world, "payment_intent.succeeded", intent))["outcome"] == "resumed"
    [resumed] = world.work()  # the subscription's runner releases the held refund once the job settles
    assert resumed.status == "succeeded" and world.get(sub_id)["status"] == "active"
    create = world.job(parked.id)
    [released] = _run_refunds(world)
    assert released.id == accepted["id"] and released.status == "succeeded", released.error
    assert world.job(released.id).view()["amounts"] == {"net": 488, "vat": 112, "total": 600, "currency": "eur"}
    # The rest in the Stripe dashboard: booked once by the webhook, VAT split against what is left.
    dashboard = stripe_client(world.sandbox).v1.refunds.create(params={"payment_intent": intent})
    assert dashboard.amount == TOTAL - 600
    charge = create.stage_results["charge"]["charge"]
    assert _webhook(world, "charge.refunded", charge).stage_results["handle"]["outcome"] == "booked"
    assert _webhook(world, "charge.refunded", charge, again=True).stage_results["handle"]["outcome"] == "nothing_new"
    rows = refund_rows(world.c, create.id)
    assert [(r["source"], r["amount"], r["net"], r["vat"]) for r in rows] == [
        ("engine", 600, 488, 112),
        ("stripe", 507, 412, 95),
    ]
    balance = _balance(world, [create.id, released.id])
    assert balance["refunds"] == 488 and balance["revenue"] == -NET
    assert len(_credit_notes(world, create)) == 2
    _assert_money(world, create)
    report = reconcile_stripe(world.c.db, world.c.stripe, since=since, grace_seconds=0)
    mine = {create.id, released.id, dashboard.id, intent}
    assert [f for f in report.findings if f.job_id in mine or f.stripe_id in mine] == []
    assert report.refunds >= 2


def test_an_upgrades_prorated_charge_is_refunded_on_its_own(world: World) -> None:
    sub_id, create = _subscribed(world)
    sub = world.get(sub_id)
    at = parse(sub["current_period_start"]) + timedelta(days=10)
    world.post(f"/v1/subscriptions/{sub_id}/change", {"plan": "pro-monthly", "proration_date": int(at.timestamp())})
    [upgrade] = world.work()
    assert upgrade.status == "succeeded", upgrade.error
    upgrade = world.job(upgrade.id)
    charged = upgrade.public["amounts"]
    assert charged["total"] > 0 and _intent(upgrade) != _intent(create)
    _refund(world, {"payment": upgrade.id})
    [done] = _run_refunds(world)
    assert done.status == "succeeded", done.error
    assert world.job(done.id).view()["amounts"] == charged
    [note] = _credit_notes(world, upgrade)
    assert (note["net"], note["vat"]) == (charged["net"], charged["vat"])
    assert _credit_notes(world, create) == [] and _live(world, create) == []
    _assert_money(world, upgrade)


def test_a_refund_of_an_invoiced_payment_issues_a_credit_note_and_one_without_an_invoice_none(world: World) -> None:
    from tests.integration.subscriptions.test_payment_invoices import pay, work_payments

    invoiced = pay(world, invoice=True)  # EUR 25.00 + 23 % = 30.75
    plain = pay(world)
    paid = {j.id: j for j in work_payments(world)}
    assert {j.status for j in paid.values()} == {"succeeded"}
    _refund(world, {"payment": invoiced["id"], "amount": 1000})
    _refund(world, {"payment": plain["id"], "amount": 1000})
    done = _run_refunds(world)
    assert [j.status for j in done] == ["succeeded", "succeeded"], [j.error for j in done]
    by_payment = {world.job(j.id).view()["refund"]["payment"]: world.job(j.id).view() for j in done}
    note = by_payment[invoiced["id"]]["credit_note"]
    [row] = _credit_notes(world, world.job(invoiced["id"]))
    assert note["number"] == row["number"] and (row["net"], row["vat"], row["total"]) == (813, 187, 1000)
    assert "credit_note" not in by_payment[plain["id"]]
    assert verify(world.c.db).ok


def test_a_renewal_paid_partly_by_credit_refunds_only_what_stripe_charged(world: World) -> None:
    from tests.integration.subscriptions.test_downgrade_credit import change, renew

    accepted = world.subscribe("pro-monthly")
    sub_id = accepted["subscription"]["id"]
    world.work()
    end = parse(world.get(sub_id)["current_period_end"])
    change(world, sub_id, "basic-monthly", end - timedelta(days=5))
    [down] = world.work()
    assert down.status == "succeeded", down.error
    renewal = world.job(renew(world, end + timedelta(minutes=1)).id)
    [intent] = world.intents({renewal.id})
    charged = int(intent["amount"])
    assert 0 < charged < TOTAL  # invoiced 11.07, the downgrade's credit paid the rest
    over = _refund(world, {"payment": renewal.id, "amount": charged + 1}, status=422)["error"]
    assert over["code"] == "refund_exceeds_captured" and f"{charged} minor units" in over["message"]
    _refund(world, {"payment": renewal.id})
    [done] = _run_refunds(world)
    assert done.status == "succeeded", done.error
    vat = half_up(VAT * charged, TOTAL)
    assert world.job(done.id).view()["amounts"] == {
        "net": charged - vat,
        "vat": vat,
        "total": charged,
        "currency": "eur",
    }
    [note] = _credit_notes(world, renewal)
    assert (note["net"], note["vat"]) == (charged - vat, vat)
    _assert_money(world, renewal)
