"""Exactly one charge per payment job under the faults of issue 13 (items 1, 2, 5 and 8), against the real
database, Redis and the Stripe sandbox (official SDK).  Each fault is injected at the exact instant it names:
after the Stripe call and before the checkpoint, while Stripe still processes the request, or with two copies of
the job racing.  Every test asserts the money: one live PaymentIntent per job and the ledger equal to Stripe."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from dramatiq.errors import Retry

from engine.adapters.stripe_gateway import DuplicateIntents
from engine.broker.envelope import Envelope
from engine.db import jobs as job_repo
from engine.db.ledger import verify
from engine.db.tables import jobs, ledger_entries, ledger_transactions
from engine.errors import TransientError
from engine.jobs.job import Job
from engine.jobs.pipeline import StageResult
from engine.runtime.container import Container
from pipelines.payment.charge import IntentMismatch
from pipelines.payment.fraud import FraudOutput, FraudStage
from pipelines.payment.ledger import LedgerStage
from pipelines.payment.vat import VatOutput, VatStage

pytestmark = pytest.mark.integration


class WorkerDied(BaseException):
    """Stands for a SIGKILL: nothing after it runs, nothing of the worker's transaction commits."""


def _envelope(**overrides: Any) -> dict[str, Any]:
    customer = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "anna@example.ie", "country": "IE", "type": "consumer"}
    data = {"customer": customer, "amount": 1000, "currency": "eur", "payment_method": "pm_card_visa", **overrides}
    return Envelope.new(
        kind="payment", data=data, idempotency_scope=f"test:{uuid.uuid4()}", group_id=customer["id"]
    ).to_arg()


def _intents(stripe_sim: Any, job_id: str) -> list[dict[str, Any]]:
    data = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents", params={"job_id": job_id}).json()["data"]
    return [pi for pi in data if (pi.get("metadata") or {}).get("job_id") == job_id]


def _sim(stripe_sim: Any, **knobs: Any) -> None:
    assert httpx.post(f"{stripe_sim.base_url}/_sim/config", json=knobs).status_code == 200


def _booked(c: Container, job_id: str) -> list[tuple[str, int]]:
    with c.db.connect() as conn:
        rows = conn.execute(
            sa.select(ledger_entries.c.account, ledger_entries.c.amount)
            .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
            .where(ledger_transactions.c.job_id == job_id)
        ).all()
    return sorted((str(a), int(n)) for a, n in rows)


def _stored(c: Container, job_id: str) -> Job:
    with c.db.connect() as conn:
        return job_repo.get(conn, job_id)


def _assert_ledger_equals_stripe(c: Container, stripe_sim: Any, job_id: str) -> None:
    """One succeeded PaymentIntent, and the ledger's clearing debit equal to what it charged."""
    live = [pi for pi in _intents(stripe_sim, job_id) if pi["status"] == "succeeded"]
    assert len(live) == 1, live
    # The capture's debit (the credit beside it is Stripe's fee, booked with it).
    clearing = sum(n for account, n in _booked(c, job_id) if account == "stripe_clearing" and n > 0)
    assert clearing == live[0]["amount"]
    assert verify(c.db).ok


def _dies_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker dies in the ledger stage: after Stripe charged, before anything of the charge is committed."""
    original = LedgerStage.run
    died: list[bool] = []

    def run(self: LedgerStage, job: Job) -> StageResult:
        if not died:
            died.append(True)
            raise WorkerDied()
        return original(self, job)

    monkeypatch.setattr(LedgerStage, "run", run)


# -- item 1: decisions made before the charge are persisted and reused -------------------------------------------


def test_fraud_and_vat_are_kept_from_before_the_charge_when_a_redelivery_follows_a_crash(
    payment_container: Container, stripe_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = payment_container
    envelope = _envelope()
    _dies_once(monkeypatch)
    with pytest.raises(WorkerDied):
        c.run_job("payment", envelope)
    job_id = c.ensure_job(Envelope.model_validate(envelope)).id
    assert [pi["status"] for pi in _intents(stripe_sim, job_id)] == ["succeeded"]
    mid = _stored(c, job_id)
    assert mid.stage == "vat" and mid.output(VatOutput).total == 1230  # committed before the charge

    # Meanwhile the world changed: the velocity window would now say "review", the OSS total another split.
    def review(self: FraudStage, job: Job) -> StageResult:
        return StageResult(data=FraudOutput("review", 90, ("customer_velocity",)), status="in_review")

    def other_vat(self: VatStage, job: Job) -> StageResult:
        raise AssertionError("VAT recomputed after the charge")

    monkeypatch.setattr(FraudStage, "run", review)
    monkeypatch.setattr(VatStage, "run", other_vat)
    done = c.run_job("payment", envelope)
    assert done.status == "succeeded"
    assert _booked(c, job_id) == sorted(
        [
            ("stripe_clearing", 1230),
            ("revenue", -1000),
            ("vat_payable:IE", -230),
            ("fees", 65),
            ("stripe_clearing", -65),
        ]
    )
    _assert_ledger_equals_stripe(c, stripe_sim, job_id)


def test_a_found_intent_of_another_amount_is_an_incident_never_a_new_charge(
    payment_container: Container, stripe_sim: Any
) -> None:
    c = payment_container
    envelope = _envelope()
    job = c.ensure_job(Envelope.model_validate(envelope))
    customer = envelope["data"]["customer"]
    stripe_customer = c.stripe.customer_for(job.id, customer["id"], customer["email"])
    # An intent charged for this job before (another VAT split), under a key this delivery will not use.
    c.stripe.create_and_confirm(
        job.id,
        amount=1190,
        currency="eur",
        customer=stripe_customer,
        payment_method="pm_card_visa",
        idempotency_key=f"{job.id}:earlier",
    )
    with c.db.begin() as conn:  # a replayed message: the charge looks its intent up first
        conn.execute(jobs.update().where(jobs.c.id == job.id).values(enqueue_generation=1))
    with pytest.raises(IntentMismatch, match="charges 1190 eur, the job 1230 eur"):
        c.run_job("payment", envelope)
    assert [pi["amount"] for pi in _intents(stripe_sim, job.id)] == [1190]
    assert _booked(c, job.id) == []
    assert _stored(c, job.id).status == "processing"


def test_a_review_decline_is_refused_when_stripe_already_charged_the_job(
    payment_container: Container, stripe_sim: Any
) -> None:
    from fastapi.testclient import TestClient

    from engine.adapters.auth import mint
    from engine.ingest.app import create_app

    c = payment_container
    envelope = _envelope(amount=900_000)
    parked = c.run_job("payment", envelope)
    assert parked.status == "in_review"
    customer = envelope["data"]["customer"]
    # The charge of an earlier delivery that died before its checkpoint.
    c.stripe.create_and_confirm(
        parked.id,
        amount=1_107_000,
        currency="eur",
        customer=c.stripe.customer_for(parked.id, customer["id"], customer["email"]),
        payment_method="pm_card_visa",
        idempotency_key=f"{parked.id}:charge:g1",
    )
    api = TestClient(create_app(c))
    headers = {"Authorization": f"Bearer {mint(c.settings, 'admin', sub='reviewer-1')}"}
    answer = api.post(f"/v1/jobs/{parked.id}/review", json={"decision": "decline"}, headers=headers)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "job_charged_at_stripe"
    assert _stored(c, parked.id).status == "in_review"


def test_a_review_decline_finds_a_charge_that_stripe_search_does_not_show_yet(
    payment_container: Container, stripe_sim: Any
) -> None:
    """Stripe's search lags behind writes: the decline reads the customer's intents (a consistent list) first."""
    from fastapi.testclient import TestClient

    from engine.adapters.auth import mint
    from engine.ingest.app import create_app

    c = payment_container
    envelope = _envelope(amount=900_000)
    parked = c.run_job("payment", envelope)
    assert parked.status == "in_review"
    customer = envelope["data"]["customer"]
    _sim(stripe_sim, search_lag_seconds=600)
    try:
        c.stripe.create_and_confirm(
            parked.id,
            amount=1_107_000,
            currency="eur",
            customer=c.stripe.customer_for(parked.id, customer["id"], customer["email"]),
            payment_method="pm_card_visa",
            idempotency_key=f"{parked.id}:charge:g1",
        )
        searched = c.stripe.client.v1.payment_intents.search(params={"query": f"metadata['job_id']:'{parked.id}'"})
        assert searched.data == []  # the lag is real: a search alone would let the decline through
        api = TestClient(create_app(c))
        headers = {"Authorization": f"Bearer {mint(c.settings, 'admin', sub='reviewer-1')}"}
        answer = api.post(f"/v1/jobs/{parked.id}/review", json={"decision": "decline"}, headers=headers)
    finally:
        _sim(stripe_sim, search_lag_seconds=0)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "job_charged_at_stripe"
    assert _stored(c, parked.id).status == "in_review"


# -- item 5: fencing -----------------------------------------------------------------------------------------------


def test_two_copies_racing_charge_once_and_the_late_one_stops_quietly(
    payment_container: Container, stripe_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = payment_container
    envelope = _envelope()
    original = LedgerStage.run
    first_in_ledger, second_done = threading.Event(), threading.Event()
    late = threading.current_thread()

    def run(self: LedgerStage, job: Job) -> StageResult:
        if threading.current_thread() is late and not first_in_ledger.is_set():
            # The first copy charged and is about to book: it stalls (a GC pause, a visibility expiry) here.
            first_in_ledger.set()
            assert second_done.wait(30)
        return original(self, job)

    monkeypatch.setattr(LedgerStage, "run", run)
    results: list[Job] = []

    def second_copy() -> None:
        assert first_in_ledger.wait(30)
        results.append(c.run_job("payment", envelope))
        second_done.set()

    other = threading.Thread(target=second_copy)
    other.start()
    stale = c.run_job("payment", envelope)  # returns quietly: its checkpoint lost the race
    other.join(30)
    assert results and results[0].status == "succeeded"
    assert stale.status == "succeeded" and stale.stage == "notify"
    assert len(_intents(stripe_sim, stale.id)) == 1
    assert len({t for t in _ledger_transactions(c, stale.id)}) == 1
    _assert_ledger_equals_stripe(c, stripe_sim, stale.id)


def test_a_stale_copy_never_charges_a_job_the_other_copy_parked_in_review(
    payment_container: Container, stripe_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = payment_container
    envelope = _envelope()
    stale_scored, parked = threading.Event(), threading.Event()
    stale = threading.current_thread()

    def fraud(self: FraudStage, job: Job) -> StageResult:
        if threading.current_thread() is stale:
            # This copy scored the payment "approve" (before a burst of payments), then stalled.
            stale_scored.set()
            assert parked.wait(30)
            return StageResult(data=FraudOutput("approve", 0, ()))
        return StageResult(data=FraudOutput("review", 90, ("customer_velocity",)), status="in_review")

    monkeypatch.setattr(FraudStage, "run", fraud)

    def fresh_copy() -> None:
        assert stale_scored.wait(30)
        assert c.run_job("payment", envelope).status == "in_review"
        parked.set()

    other = threading.Thread(target=fresh_copy)
    other.start()
    late = c.run_job("payment", envelope)
    other.join(30)
    assert late.status == "in_review"
    assert _intents(stripe_sim, late.id) == []  # the stale copy's checkpoint before the charge lost the race
    assert _booked(c, late.id) == []


def _ledger_transactions(c: Container, job_id: str) -> list[str]:
    with c.db.connect() as conn:
        return [
            str(t)
            for t in conn.execute(
                sa.select(ledger_transactions.c.id).where(ledger_transactions.c.job_id == job_id)
            ).scalars()
        ]


def test_a_stale_checkpoint_cannot_rewind_a_succeeded_job(payment_container: Container) -> None:
    c = payment_container
    done = c.run_job("payment", _envelope())
    assert done.status == "succeeded"
    with c.db.begin() as conn, pytest.raises(job_repo.StaleCopy):
        job_repo.checkpoint(
            conn, done.id, expected_stage="vat", stage="charge", stage_results={"charge": {}}, status="processing"
        )
    with c.db.begin() as conn, pytest.raises(job_repo.StaleCopy):
        job_repo.note(conn, done.id, "charge_progress", {"generation": 9}, expected_stage="vat")
    after = _stored(c, done.id)
    assert (after.status, after.stage) == ("succeeded", "notify")
    assert "charge_progress" not in after.stage_results


# -- item 2: the same key after a timeout ----------------------------------------------------------------------


def test_a_connection_lost_while_stripe_still_processes_charges_once(
    payment_container: Container, stripe_sim: Any
) -> None:
    c = payment_container
    envelope = _envelope()
    job_id = c.ensure_job(Envelope.model_validate(envelope)).id
    customer = envelope["data"]["customer"]
    c.stripe.customer_for(job_id, customer["id"], customer["email"])  # known before the fault
    _sim(stripe_sim, drop_in_flight_rate=1.0, in_flight_seconds=3.0)
    # A lost connection is Stripe's failure, not the job's: given back to the queue (Retry), no attempt spent.
    with pytest.raises(Retry):
        c.run_job("payment", envelope)
    _sim(stripe_sim, drop_in_flight_rate=0.0)
    c.stripe.breaker.record_success()
    # Redelivered at once, while Stripe still processes the first request (no lookup can see its intent yet).
    deadline = time.monotonic() + 20
    while True:
        try:
            job = c.run_job("payment", envelope)
            break
        except (TransientError, Retry):
            assert time.monotonic() < deadline
            c.stripe.breaker.record_success()
            time.sleep(0.5)
    assert job.status == "succeeded"
    assert job.stage_results["charge"]["generation"] == 1
    time.sleep(3.5)  # anything still in flight has finished by now
    assert httpx.get(f"{stripe_sim.base_url}/_sim/stats").json()["dropped_in_flight"] == 1
    _assert_ledger_equals_stripe(c, stripe_sim, job_id)


def test_a_replayed_500_finds_the_intent_of_another_key_instead_of_charging_again(
    payment_container: Container, stripe_sim: Any
) -> None:
    c = payment_container
    envelope = _envelope(payment_method="pm_card_mastercard")
    job_id = c.ensure_job(Envelope.model_validate(envelope)).id
    customer = envelope["data"]["customer"]
    _sim(stripe_sim, fail_payment_methods=["pm_card_mastercard"])
    with pytest.raises(TransientError):
        c.run_job("payment", envelope)  # g1 answered 500: saved under the key
    _sim(stripe_sim, fail_payment_methods=[])
    c.stripe.breaker.record_success()
    # An intent for the job made meanwhile (by a copy that moved to g2 and died before recording it).
    c.stripe.create_and_confirm(
        job_id,
        amount=1230,
        currency="eur",
        customer=c.stripe.customer_for(job_id, customer["id"], customer["email"]),
        payment_method="pm_card_mastercard",
        idempotency_key=f"{job_id}:charge:g2",
    )
    job = c.run_job("payment", envelope)
    assert job.status == "succeeded"
    _assert_ledger_equals_stripe(c, stripe_sim, job_id)


# -- item 8: several intents for one job -----------------------------------------------------------------------------


def test_several_intents_for_one_job_are_an_incident(payment_container: Container, stripe_sim: Any) -> None:
    from prometheus_client import REGISTRY

    c = payment_container
    envelope = _envelope()
    job = c.ensure_job(Envelope.model_validate(envelope))
    customer = envelope["data"]["customer"]
    stripe_customer = c.stripe.customer_for(job.id, customer["id"], customer["email"])
    for key in ("a", "b"):
        c.stripe.create_and_confirm(
            job.id,
            amount=1230,
            currency="eur",
            customer=stripe_customer,
            payment_method="pm_card_visa",
            idempotency_key=f"{job.id}:{key}",
        )
    with c.db.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job.id).values(enqueue_generation=1))
    labels = {"kind": "payment", "incident": "several_intents"}
    before = REGISTRY.get_sample_value("payments_stripe_incidents_total", labels) or 0.0
    with pytest.raises(DuplicateIntents, match="2 PaymentIntents carry job_id"):
        c.run_job("payment", envelope)
    assert REGISTRY.get_sample_value("payments_stripe_incidents_total", labels) == before + 1
    assert len(_intents(stripe_sim, job.id)) == 2  # nothing picked, nothing booked, no third charge
    assert _booked(c, job.id) == []
