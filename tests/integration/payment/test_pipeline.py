"""The payment pipeline against the real database, Redis and the Stripe sandbox (official SDK, no mocks)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from dramatiq.errors import Retry

from engine.broker.envelope import Envelope
from engine.db import jobs as job_repo
from engine.db.ledger import verify
from engine.db.tables import ledger_entries, ledger_transactions, outbox
from engine.errors import TransientError
from engine.runtime.container import Container


def _envelope(payment_container: Container, **overrides: Any) -> dict[str, Any]:
    customer = overrides.pop("customer", None) or {
        "id": f"cus_{uuid.uuid4().hex[:10]}",
        "email": "anna@example.ie",
        "country": "IE",
        "type": "consumer",
    }
    data = {"customer": customer, "amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", **overrides}
    return Envelope.new(
        kind="payment", data=data, idempotency_scope=f"test:{uuid.uuid4()}", group_id=customer["id"]
    ).to_arg()


def _intents(stripe_sim, job_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    data = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents").json()["data"]
    return [pi for pi in data if (pi.get("metadata") or {}).get("job_id") == job_id]


def _sim(stripe_sim, **knobs: Any) -> None:  # type: ignore[no-untyped-def]
    assert httpx.post(f"{stripe_sim.base_url}/_sim/config", json=knobs).status_code == 200


def test_b2c_payment_is_taxed_charged_once_and_booked(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    envelope = _envelope(payment_container)
    job = payment_container.run_job("payment", envelope)
    assert job.status == "succeeded"
    with payment_container.db.connect() as conn:
        stored = job_repo.get(conn, job.id)
        entries = conn.execute(
            sa.select(ledger_entries.c.account, ledger_entries.c.amount)
            .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
            .where(ledger_transactions.c.job_id == job.id)
        ).all()
        events = conn.execute(sa.select(outbox.c.event_type).where(outbox.c.job_id == job.id)).scalars().all()
    view = stored.view()
    assert view["amounts"] == {"net": 1000, "vat": 230, "total": 1230, "currency": "eur"}
    assert view["vat"] == {"country": "IE", "rate": "23", "scheme": "domestic"}
    assert view["fraud"]["decision"] == "approve"
    assert view["stripe"]["payment_intent"].startswith("pi_")
    assert view["ledger_transaction"] and view["stage"] == "notify"
    # Stripe's fee from the charge's balance transaction (a US card: 3.25 % of 12.30 + 0.25 = 0.65) is booked with
    # the capture, so stripe_clearing holds what Stripe pays out.
    assert view["fee"] == {"amount": 65, "currency": "eur"}
    assert sorted(entries) == sorted(
        [
            ("stripe_clearing", 1230),
            ("revenue", -1000),
            ("vat_payable:IE", -230),
            ("fees", 65),
            ("stripe_clearing", -65),
        ]
    )
    assert events == ["job.succeeded"]
    intents = _intents(stripe_sim, job.id)
    assert [pi["status"] for pi in intents] == ["succeeded"] and intents[0]["amount"] == 1230
    # A duplicate delivery of the same message changes nothing.
    assert payment_container.run_job("payment", envelope).status == "succeeded"
    assert len(_intents(stripe_sim, job.id)) == 1
    assert verify(payment_container.db).ok


def test_reverse_charge_b2b_in_another_state(payment_container) -> None:  # type: ignore[no-untyped-def]
    customer = {
        "id": f"cus_{uuid.uuid4().hex[:8]}",
        "email": "ap@firma.de",
        "country": "DE",
        "type": "business",
        "vat_id": "DE136695976",
    }
    job = payment_container.run_job("payment", _envelope(payment_container, customer=customer, amount=10000))
    with payment_container.db.connect() as conn:
        view = job_repo.get(conn, job.id).view()
    assert job.status == "succeeded"
    assert view["vat"] == {"country": "DE", "rate": "0", "scheme": "reverse_charge"}
    assert view["amounts"]["total"] == 10000


@pytest.mark.parametrize(
    ("method", "decline_code"),
    [("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"), ("pm_card_chargeDeclined", "generic_decline")],
)
def test_decline_fails_the_job_with_the_decline_code(payment_container, method, decline_code) -> None:  # type: ignore[no-untyped-def]
    job = payment_container.run_job("payment", _envelope(payment_container, payment_method=method))
    with payment_container.db.connect() as conn:
        stored = job_repo.get(conn, job.id)
    assert stored.status == "failed"
    assert stored.error is not None
    assert stored.error["code"] == "card_declined" and stored.error["decline_code"] == decline_code
    with payment_container.db.connect() as conn:
        booked = conn.execute(sa.select(ledger_transactions).where(ledger_transactions.c.job_id == job.id)).all()
    assert booked == []


def test_review_and_fraud_decline_never_reach_stripe(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    review = payment_container.run_job("payment", _envelope(payment_container, amount=900_000))
    blocked_customer = {"id": f"cus_{uuid.uuid4().hex[:8]}", "email": "x@fraud.test", "country": "IE"}
    declined = payment_container.run_job("payment", _envelope(payment_container, customer=blocked_customer))
    assert review.status == "in_review" and declined.status == "failed"
    assert _intents(stripe_sim, review.id) == [] and _intents(stripe_sim, declined.id) == []
    with payment_container.db.connect() as conn:
        assert job_repo.get(conn, declined.id).error["code"] == "fraud_declined"  # type: ignore[index]


def test_three_d_secure_parks_requires_action(payment_container) -> None:  # type: ignore[no-untyped-def]
    job = payment_container.run_job(
        "payment", _envelope(payment_container, payment_method="pm_card_threeDSecure2Required")
    )
    with payment_container.db.connect() as conn:
        view = job_repo.get(conn, job.id).view()
    assert view["status"] == "requires_action"
    assert view["stripe"]["client_secret"] and view["next_action"]


def test_a_saved_500_leads_to_lookup_then_a_new_key_generation(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    envelope = _envelope(payment_container, payment_method="pm_card_mastercard")
    _sim(stripe_sim, fail_payment_methods=["pm_card_mastercard"])
    with pytest.raises(TransientError):
        payment_container.run_job("payment", envelope)
    job_id = envelope.get("job_id") or None
    _sim(stripe_sim, fail_payment_methods=[])
    job = payment_container.run_job("payment", envelope)
    assert job.status == "succeeded"
    assert job_id is None or job.id == job_id
    with payment_container.db.connect() as conn:
        stored = job_repo.get(conn, job.id)
    assert stored.stage_results["charge"]["generation"] == 2
    assert [pi["status"] for pi in _intents(stripe_sim, job.id)] == ["succeeded"]


def test_unknown_outcome_after_a_dropped_connection_charges_once(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    envelope = _envelope(payment_container)
    _sim(stripe_sim, drop_rate=1.0)
    # A lost connection is Stripe's failure, not the job's: given back to the queue, no attempt spent.
    with pytest.raises(Retry) as caught:
        payment_container.run_job("payment", envelope)
    assert isinstance(caught.value.__cause__, TransientError)
    _sim(stripe_sim, drop_rate=0.0)
    job = payment_container.run_job("payment", envelope)
    assert job.status == "succeeded"
    assert len([pi for pi in _intents(stripe_sim, job.id) if pi["status"] == "succeeded"]) == 1


def test_metrics_move_with_a_payment(payment_container) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import REGISTRY

    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_jobs = sample("payments_jobs_total", {"kind": "payment", "outcome": "succeeded"})
    before_calls = sample("payments_stripe_requests_total", {"operation": "payment_intents.create", "outcome": "ok"})
    before_stage = sample("payments_stage_duration_seconds_count", {"pipeline": "payment", "stage": "charge"})
    assert payment_container.run_job("payment", _envelope(payment_container)).status == "succeeded"
    assert sample("payments_jobs_total", {"kind": "payment", "outcome": "succeeded"}) == before_jobs + 1
    assert (
        sample("payments_stripe_requests_total", {"operation": "payment_intents.create", "outcome": "ok"})
        == before_calls + 1
    )
    assert (
        sample("payments_stage_duration_seconds_count", {"pipeline": "payment", "stage": "charge"}) == before_stage + 1
    )


def test_the_fee_of_an_eea_card_is_the_balance_transactions(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    """1.5 % + EUR 0.25 for a card issued in the EEA, taken from the charge's balance transaction, booked once
    even when the ledger stage runs again."""
    envelope = _envelope(payment_container, amount=10_000, payment_method="pm_card_fr")
    job = payment_container.run_job("payment", envelope)
    assert job.status == "succeeded"
    charge = httpx.get(f"{stripe_sim.base_url}/_sim/charges", params={"job_id": job.id}).json()["data"][0]
    txn = httpx.get(f"{stripe_sim.base_url}/_sim/balance_transactions", params={"source": charge["id"]}).json()["data"][
        0
    ]
    total = 10_000 + 2_300  # net + Irish VAT
    assert txn["fee"] == (total * 150 + 5000) // 10000 + 25 == 210
    assert payment_container.run_job("payment", envelope).status == "succeeded"
    with payment_container.db.connect() as conn:
        fees = conn.execute(
            sa.select(ledger_entries.c.account, ledger_entries.c.amount)
            .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
            .where(ledger_transactions.c.job_id == job.id, ledger_entries.c.account == "fees")
        ).all()
    assert fees == [("fees", 210)]
    assert verify(payment_container.db).ok
