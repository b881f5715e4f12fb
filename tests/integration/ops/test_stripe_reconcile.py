"""``payments reconcile stripe`` and the daily ``stripe-reconcile`` task: the ledger against Stripe, per job.

Real database and the Stripe sandbox (official SDK).  Each discrepancy is made the way it happens — a second
PaymentIntent for a job, a refund nobody booked, a refund that failed after it was booked — and found; the
engine's own paths leave nothing to find.  The database is shared by the tests of a worker, so every reconciliation
here looks at what was created since the test began (``since``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client import REGISTRY

from engine.db.ledger import record
from engine.domain.ledger import payment_captured
from engine.ops import stripe_reconcile
from engine.ops.stripe_reconcile import reconcile_stripe
from engine.runtime.container import Container
from tests.integration.refunds.helpers import load, payment_envelope, refund_envelope, stripe_client


@pytest.fixture
def since() -> datetime:
    return datetime.now(UTC)


def _run(c: Container, since: datetime) -> Any:
    # grace 0: the objects of a test are seconds old, and none of them is waiting for its booking.
    return reconcile_stripe(c.db, c.stripe, since=since, grace_seconds=0)


def _paid(c: Container, amount: int = 1000) -> Any:
    job = c.run_job("payment", payment_envelope("IE", amount))
    assert job.status == "succeeded", job.error
    return load(c, job.id)


def _kinds(report: Any) -> list[tuple[str, str]]:
    return [(f.kind, f.job_id) for f in report.findings]


def test_the_engines_own_payments_and_refunds_reconcile(payment_container, stripe_sim, since) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    assert payment_container.run_job("refund", refund_envelope(payment, 300)).status == "succeeded"
    report = _run(payment_container, since)
    assert report.ok, report.findings
    assert (report.intents, report.refunds, report.bookings) == (1, 1, 2)
    assert report.counts() == dict.fromkeys(stripe_reconcile.FINDING_KINDS, 0)


def test_a_second_live_intent_for_a_job_is_a_duplicate_charge(payment_container, stripe_sim, since) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    first = stripe_client(stripe_sim).v1.payment_intents.retrieve(payment.public["stripe"]["payment_intent"])
    stripe_client(stripe_sim).v1.payment_intents.create(
        params={
            "amount": first.amount,
            "currency": first.currency,
            "customer": first.customer,
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {"job_id": payment.id},
        }
    )
    report = _run(payment_container, since)
    assert _kinds(report) == [("duplicate_intent", payment.id)]


def test_money_moved_without_a_booking_and_a_booking_without_money(payment_container, stripe_sim, since) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    intent = payment.public["stripe"]["payment_intent"]
    # A refund the engine made and never booked (its job died and nobody replayed it, no webhook came).
    made = stripe_client(stripe_sim).v1.refunds.create(
        params={"payment_intent": intent, "amount": 100, "metadata": {"job_id": "job_lost_refund"}}
    )
    # A capture booked for a job Stripe never charged.
    with payment_container.db.begin() as conn:
        record(conn, payment_captured("job_never_charged", "cus_x", "eur", 1000, 230, "IE"))
    report = _run(payment_container, since)
    assert _kinds(report) == [("refund_not_booked", "job_lost_refund"), ("booking_without_stripe", "job_never_charged")]
    assert report.findings[0].stripe_id == made.id


def test_a_booking_of_another_amount_is_a_mismatch(payment_container, stripe_sim, since) -> None:  # type: ignore[no-untyped-def]
    customer = stripe_client(stripe_sim).v1.customers.create(params={"email": "x@example.ie"})
    stripe_client(stripe_sim).v1.payment_intents.create(
        params={
            "amount": 1230,
            "currency": "eur",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {"job_id": "job_other_amount"},
        }
    )
    with payment_container.db.begin() as conn:
        record(conn, payment_captured("job_other_amount", customer.id, "eur", 1000, 190, "DE"))
    report = _run(payment_container, since)
    assert _kinds(report) == [("amount_mismatch", "job_other_amount")]
    assert "Stripe 1230 eur, ledger 1190 eur" in report.findings[0].detail


def test_a_booked_refund_that_failed_is_found_until_it_is_reversed(payment_container, stripe_sim, since) -> None:  # type: ignore[no-untyped-def]
    from engine.broker.envelope import Envelope

    payment = _paid(payment_container)
    stripe_sim.configure(pending_refunds=True)
    job = payment_container.run_job("refund", refund_envelope(payment, 500))
    refund_id = job.public["stripe"]["refund"]
    httpx.post(f"{stripe_sim.base_url}/_sim/refunds/{refund_id}/settle", json={"result": "failed"})
    report = _run(payment_container, since)
    assert _kinds(report) == [("booking_without_stripe", job.id)]
    # The refund.failed webhook reverses the booking: nothing left to find.
    events = httpx.get(f"{stripe_sim.base_url}/_sim/events").json()["data"]
    event = next(e for e in events if e["type"] == "refund.failed")
    envelope = Envelope.new(kind="webhook", data=event, idempotency_scope=f"s:{event['id']}", group_id=refund_id)
    assert payment_container.run_job("webhook", envelope.to_arg()).status == "succeeded"
    assert _run(payment_container, since).ok


def test_the_daily_task_sets_a_gauge_per_finding_kind(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    stripe_client(stripe_sim).v1.refunds.create(
        params={
            "payment_intent": payment.public["stripe"]["payment_intent"],
            "amount": 50,
            "metadata": {"job_id": "job_x"},
        }
    )
    # An hour later (past the grace for objects waiting for their booking).
    line = stripe_reconcile.run_task(
        payment_container.db, payment_container.stripe, datetime.now(UTC) + timedelta(hours=1)
    )
    assert "FOUND" in line and "refund_not_booked" in line
    sample = REGISTRY.get_sample_value
    assert sample("payments_stripe_reconcile_findings", {"kind": "refund_not_booked"}) >= 1
    assert sample("payments_stripe_reconcile_findings", {"kind": "duplicate_intent"}) is not None
    assert stripe_reconcile.run_task(payment_container.db, None, datetime.now(UTC)).startswith("skipped")


def test_cli_exits_1_when_something_is_found_and_0_when_not(payment_container, stripe_sim, since, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import engine.runtime.container as container_module
    from cli.main import cli

    monkeypatch.setattr(container_module, "bootstrap", lambda *a, **k: payment_container)
    _paid(payment_container)
    runner = CliRunner()
    window = since.isoformat()
    clean = runner.invoke(cli, ["reconcile", "stripe", "--since", window, "--json"])
    assert clean.exit_code == 0, clean.output
    assert '"ok": true' in clean.output
    with payment_container.db.begin() as conn:
        record(conn, payment_captured("job_ghost_capture", "cus_x", "eur", 500, 0, "IE"))
    found = runner.invoke(cli, ["reconcile", "stripe", "--since", window])
    assert found.exit_code == 1 and "booking_without_stripe" in found.output and "job_ghost_capture" in found.output
    bad = runner.invoke(cli, ["reconcile", "stripe", "--since", "yesterday"])
    assert bad.exit_code == 2
