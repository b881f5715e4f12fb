"""A downgrade's credit is booked in the ledger (``customer_credit:{customer}``, a liability) with a credit note
for its VAT, and the next renewals consume it: in part (Stripe charges the rest), in full (nothing charged, still
invoiced) and carried over; exactly once under redelivery."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.db.ledger import balances, verify
from engine.db.tables import ledger_transactions
from engine.db.tables_credit_notes import credit_notes
from engine.invoices import store
from engine.invoices.credit_notes import store_pending
from engine.invoices.stage import InvoiceStage
from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult
from pipelines.subscription.billing import add_intervals
from tests.fixtures.pdf import pdf_text
from tests.integration.subscriptions.conftest import World
from tests.integration.subscriptions.test_renewals import assert_gap_free


class WorkerDied(BaseException):
    """Stands for a SIGKILL: nothing after it runs, nothing of the worker's open transaction commits."""


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def balance(world: World, account: str) -> int:
    found = [b["balance"] for b in balances(world.c.db, account) if b["account"] == account]
    return sum(found)


def notes_of(world: World, job_id: str) -> list[sa.RowMapping]:
    with world.c.db.connect() as conn:
        return list(conn.execute(sa.select(credit_notes).where(credit_notes.c.job_id == job_id)).mappings().all())


def transactions_of(world: World, job_id: str) -> list[str]:
    with world.c.db.connect() as conn:
        return sorted(
            conn.execute(
                sa.select(ledger_transactions.c.effect_key).where(ledger_transactions.c.job_id == job_id)
            ).scalars()
        )


def change(world: World, sub_id: str, plan: str, at: datetime) -> dict[str, Any]:
    return world.post(f"/v1/subscriptions/{sub_id}/change", {"plan": plan, "proration_date": int(at.timestamp())})


def renew(world: World, now: datetime) -> Job:
    world.schedulers(now, count=1)
    [job] = world.work()
    assert job.status == "succeeded", job.error
    return job


def test_a_downgrade_books_its_credit_with_a_credit_note_and_the_renewal_uses_it(world: World) -> None:
    accepted = world.subscribe("pro-monthly")
    sub_id = accepted["subscription"]["id"]
    [first] = world.work()
    customer = first.customer_id
    sub = world.get(sub_id)
    start, end = parse(sub["current_period_start"]), parse(sub["current_period_end"])
    period = int((end - start).total_seconds())
    change(world, sub_id, "basic-monthly", end - timedelta(days=5))
    [down] = world.work()
    assert down.status == "succeeded", down.error
    assert world.intents({down.id}) == []
    credit = half_up(2000 * 5 * 86400, period)
    credit_vat = half_up(credit * 23, 100)
    gross = credit + credit_vat

    # The credit note credits the create's invoice, with its VAT; the ledger holds the credit as a liability.
    [first_invoice] = [r for r in world.invoices() if r["job_id"] == first.id]
    [note] = notes_of(world, down.id)
    assert (note["net"], note["vat"], note["total"]) == (credit, credit_vat, gross)
    assert note["invoice_number"] == first_invoice["number"] and note["number"].startswith("CN-")
    assert (note["vat_country"], note["vat_rate"], note["vat_scheme"]) == ("IE", "23", "domestic")
    view = world.job(down.id).view()
    expected = {"number": note["number"], "invoice": first_invoice["number"], "s3_key": note["s3_key"]}
    assert view["credit_note"] == expected
    assert view["subscription"]["plan"] == "basic-monthly"
    assert transactions_of(world, down.id) == [f"subscription:{down.id}:credit_note"]
    assert balance(world, f"customer_credit:{customer}") == -gross
    world.c.build(store_pending)  # the credit-notes task stores the PDF once the booking committed
    text = pdf_text(store.get_pdf(world.c.s3, world.c.settings, note["s3_key"]))
    assert f"Credit note {note['number']}" in text and f"Credits invoice {first_invoice['number']}" in text

    # The renewal is invoiced in full; the credit pays part of it and Stripe charges the rest.
    renewal = renew(world, end + timedelta(minutes=1))
    [intent] = world.intents({renewal.id})
    assert (intent["status"], intent["amount"]) == ("succeeded", 1107 - gross)
    [invoice] = [r for r in world.invoices() if r["job_id"] == renewal.id]
    assert (invoice["net"], invoice["vat"], invoice["total"]) == (900, 207, 1107)
    assert invoice["document"]["credit_applied"] == gross
    text = pdf_text(store.get_pdf(world.c.s3, world.c.settings, invoice["s3_key"]))
    assert "Credit applied" in text and "Amount paid" in text
    assert world.job(renewal.id).view()["credit_applied"] == {"amount": gross, "currency": "eur"}
    assert balance(world, f"customer_credit:{customer}") == 0
    assert balance(world, f"receivable:{customer}") == 0
    assert transactions_of(world, renewal.id) == sorted(
        f"subscription:{renewal.id}:{effect}" for effect in ("invoice", "credit", "paid", "fee")
    )
    # The next renewal has no credit left: charged in full.
    next_renewal = renew(world, add_intervals(end, "month", 1) + timedelta(minutes=1))
    assert [pi["amount"] for pi in world.intents({next_renewal.id})] == [1107]
    assert_gap_free(world)
    assert verify(world.c.db).ok


def test_a_credit_larger_than_a_renewal_pays_it_in_full_and_carries_over(world: World) -> None:
    accepted = world.subscribe("pro-yearly")
    sub_id = accepted["subscription"]["id"]
    [first] = world.work()
    customer = first.customer_id
    start = parse(world.get(sub_id)["current_period_start"])
    # Yearly → monthly a day in: the cycle restarts, the unused year less the first month is credited.
    change(world, sub_id, "basic-monthly", start + timedelta(days=1))
    [down] = world.work()
    assert down.status == "succeeded", down.error
    [note] = notes_of(world, down.id)
    gross = int(note["total"])
    assert note["vat"] == half_up(int(note["net"]) * 23, 100) and gross > 2 * 1107
    assert balance(world, f"customer_credit:{customer}") == -gross
    anchor = parse(world.get(sub_id)["current_period_start"])

    for month in (1, 2):
        renewal = renew(world, add_intervals(anchor, "month", month) + timedelta(minutes=1))
        assert world.intents({renewal.id}) == []  # nothing charged at Stripe
        [invoice] = [r for r in world.invoices() if r["job_id"] == renewal.id]
        assert (invoice["total"], invoice["document"]["credit_applied"]) == (1107, 1107)
        assert transactions_of(world, renewal.id) == sorted(
            [f"subscription:{renewal.id}:invoice", f"subscription:{renewal.id}:credit"]
        )
        assert balance(world, f"customer_credit:{customer}") == -(gross - month * 1107)
        assert world.get(sub_id)["status"] == "active"
    assert balance(world, f"receivable:{customer}") == 0
    assert_gap_free(world)
    assert verify(world.c.db).ok
    # Leave no credit note pending: other tests on this database count what the credit-notes task stores.
    world.c.build(store_pending)


def test_credit_booking_and_use_are_exactly_once_under_redelivery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = InvoiceStage.run
    deaths: list[str] = []

    def dies_once_per_job(self: InvoiceStage, job: Job) -> StageResult:
        # After ``apply`` committed the booking, before the job's next checkpoint.
        if job.id not in deaths:
            deaths.append(job.id)
            raise WorkerDied
        return original(self, job)

    accepted = world.subscribe("pro-monthly")
    sub_id = accepted["subscription"]["id"]
    [first] = world.work()
    customer = first.customer_id
    end = parse(world.get(sub_id)["current_period_end"])
    change(world, sub_id, "basic-monthly", end - timedelta(days=10))
    monkeypatch.setattr(InvoiceStage, "run", dies_once_per_job)

    [envelope] = world.receive()
    with pytest.raises(WorkerDied):
        world.c.run_job("subscription", envelope)
    down = world.c.run_job("subscription", envelope)  # the redelivery
    assert down.status == "succeeded" and deaths == [down.id]
    [note] = notes_of(world, down.id)
    assert transactions_of(world, down.id) == [f"subscription:{down.id}:credit_note"]
    gross = int(note["total"])
    assert balance(world, f"customer_credit:{customer}") == -gross

    world.schedulers(end + timedelta(minutes=1), count=1)
    [envelope] = world.receive()
    with pytest.raises(WorkerDied):
        world.c.run_job("subscription", envelope)
    renewal = world.c.run_job("subscription", envelope)
    assert renewal.status == "succeeded" and deaths == [down.id, renewal.id]
    assert [pi["amount"] for pi in world.intents({renewal.id})] == [1107 - gross]
    assert len([r for r in world.invoices() if r["job_id"] == renewal.id]) == 1
    assert transactions_of(world, renewal.id) == sorted(
        f"subscription:{renewal.id}:{effect}" for effect in ("invoice", "credit", "paid", "fee")
    )
    assert balance(world, f"customer_credit:{customer}") == 0
    assert len(notes_of(world, down.id)) == 1
    assert verify(world.c.db).ok
    world.c.build(store_pending)  # none left pending for the next test on this database
