"""Disputes end to end on real services: the sandbox opens and closes a dispute of a real charge, its signed events
go through ``POST /webhooks/stripe`` and the webhook pipeline, and the ledger follows — hold, dispute fee, won or
lost with the VAT reduced — each booked once.  A dispute of a charge the engine never made is recorded and
counted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from engine.db.ledger import verify
from engine.runtime.container import Container
from tests.integration.refunds.helpers import entries_of, load, payment_envelope, sim_events
from tests.integration.webhooks import test_stripe_webhooks as base

# The webhook tests' fixtures: a container whose ingest accepts the test signing secrets, and its ingest app.
container = base.container
api = base.api
_deliver = base._deliver
_process_webhooks = base._process_webhooks


def _balance(container: Container, job_id: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for account, value in entries_of(container, [job_id]):
        out[account] = out.get(account, 0) + value
    return {k: v for k, v in out.items() if v}


def _dispute(stripe_sim: Any, container: Container, amount: int, pm: str = "pm_card_fr") -> tuple[Any, dict[str, Any]]:
    payment = load(container, container.run_job("payment", payment_envelope("IE", amount, payment_method=pm)).id)
    assert payment.status == "succeeded"
    charge = payment.stage_results["charge"]["charge"]
    opened = httpx.post(f"{stripe_sim.base_url}/_sim/charges/{charge}/dispute", json={"reason": "fraudulent"})
    assert opened.status_code == 200, opened.text
    return payment, opened.json()


def _handle(container: Container, api: Any, stripe_sim: Any, event_type: str, dispute_id: str) -> list[Any]:
    [event] = [e for e in sim_events(stripe_sim, event_type) if e["data"]["object"]["id"] == dispute_id]
    assert _deliver(api, event).status_code == 200
    return _process_webhooks(container)


def _metric(event: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("payments_disputes_total", {"event": event, "outcome": outcome})
    return value or 0.0


def test_a_won_dispute_books_the_hold_and_fee_then_reverses_the_hold(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment, dispute = _dispute(stripe_sim, container, 10_000)
    total = payment.public["amounts"]["total"]  # 12300 with Irish VAT
    [handled] = _handle(container, api, stripe_sim, "charge.dispute.created", dispute["id"])
    assert handled.stage_results["handle"]["outcome"] == "booked"
    after_open = _balance(container, payment.id)
    assert after_open[f"receivable:{payment.customer_id}"] == total
    fee = (total * 150 + 5000) // 10000 + 25  # an EEA card: the capture's fee
    assert after_open["fees"] == fee + 2000  # plus the EUR 20.00 dispute fee
    assert after_open["stripe_clearing"] == total - fee - total - 2000

    httpx.post(f"{stripe_sim.base_url}/_sim/disputes/{dispute['id']}/close", json={"status": "won"})
    [closed] = _handle(container, api, stripe_sim, "charge.dispute.closed", dispute["id"])
    assert closed.stage_results["handle"]["outcome"] == "booked"
    # Redelivered (another event id carrying the same dispute), or the job run again: nothing more is booked.
    container.run_job("webhook", {**_requeue(closed)})
    won = _balance(container, payment.id)
    assert f"receivable:{payment.customer_id}" not in won
    assert won["stripe_clearing"] == total - fee - 2000 and won["fees"] == fee + 2000
    assert load(container, payment.id).view()["dispute"]["status"] == "won"
    assert verify(container.db).ok


def test_a_lost_dispute_writes_the_receivable_off_and_reduces_the_vat(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment, dispute = _dispute(stripe_sim, container, 10_000)
    amounts = payment.public["amounts"]
    httpx.post(f"{stripe_sim.base_url}/_sim/disputes/{dispute['id']}/close", json={"status": "lost"})
    # The closed event first (the created one lost or late): the opening is booked with it, each once.
    _handle(container, api, stripe_sim, "charge.dispute.closed", dispute["id"])
    _handle(container, api, stripe_sim, "charge.dispute.created", dispute["id"])
    lost = _balance(container, payment.id)
    assert f"receivable:{payment.customer_id}" not in lost
    assert lost["dispute_losses"] == amounts["net"]
    assert "vat_payable:IE" not in lost  # the VAT on a sale never paid is fully reduced
    assert lost["revenue"] == -amounts["net"]
    assert verify(container.db).ok


def test_a_partial_dispute_reduces_vat_in_proportion(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = load(container, container.run_job("payment", payment_envelope("IE", 1000)).id)
    charge = payment.stage_results["charge"]["charge"]
    dispute = httpx.post(f"{stripe_sim.base_url}/_sim/charges/{charge}/dispute", json={"amount": 615}).json()
    httpx.post(f"{stripe_sim.base_url}/_sim/disputes/{dispute['id']}/close", json={"status": "lost"})
    _handle(container, api, stripe_sim, "charge.dispute.closed", dispute["id"])
    lost = _balance(container, payment.id)
    assert lost["vat_payable:IE"] == -230 + 115 and lost["dispute_losses"] == 500  # half of 1230: 115 VAT
    assert verify(container.db).ok


def test_a_dispute_of_an_unknown_charge_is_recorded_answered_200_and_counted(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    """A charge made outside the engine (the dashboard, another system) is disputed: Stripe gets 200, the webhook
    job records the dispute as unmatched, the metric counts it, nothing is booked."""
    import stripe

    client = stripe.StripeClient("sk_test_x", base_addresses={"api": stripe_sim.base_url})
    intent = client.v1.payment_intents.create(
        params={"amount": 700, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    )
    dispute = httpx.post(f"{stripe_sim.base_url}/_sim/charges/{intent.latest_charge}/dispute", json={}).json()
    before = _metric("charge.dispute.created", "unmatched")
    [event] = [
        e for e in sim_events(stripe_sim, "charge.dispute.created") if e["data"]["object"]["id"] == dispute["id"]
    ]
    assert _deliver(api, event).status_code == 200
    [handled] = _process_webhooks(container)
    assert handled.status == "succeeded"
    report = handled.stage_results["handle"]
    assert report["outcome"] == "unmatched" and report["dispute"] == dispute["id"]
    assert report["charge"] == intent.latest_charge and report["amount"] == 700
    assert _metric("charge.dispute.created", "unmatched") == before + 1
    assert verify(container.db).ok


def _requeue(job: Any) -> dict[str, Any]:
    """The envelope of a webhook job again (a redelivery of its message)."""
    from engine.broker.envelope import Envelope

    return Envelope.new(
        kind="webhook", data=job.request, idempotency_scope=f"again:{job.id}", group_id="g", job_id=job.id
    ).to_arg()


@pytest.fixture(autouse=True)
def _sandbox_clean(stripe_sim: Any) -> None:
    """Every test finds its own dispute (events are filtered by dispute id; nothing to reset)."""
