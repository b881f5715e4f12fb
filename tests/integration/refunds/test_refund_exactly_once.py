"""Issue 13 items 3 and 7: a refund is made and booked exactly once, whatever crashes, expires or races.

Real database, SQS endpoint and the Stripe sandbox (official SDK).  The crash is injected at the exact instant:
Stripe has made the refund and the worker dies before the stage's checkpoint (a ``BaseException``, like a SIGKILL:
nothing of the engine's error handling runs).  Every test asserts the money invariant — refunds never exceed the
sale, and the ledger equals Stripe — not only the job's status.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from dramatiq.errors import Retry

from engine.broker.envelope import Envelope
from engine.db.ledger import verify
from engine.db.tables import ledger_entries, ledger_transactions
from engine.errors import TransientError
from engine.jobs.job import Job
from engine.runtime.container import Container
from tests.integration.refunds.helpers import load, payment_envelope, refund_envelope, refund_rows, sim_refunds

DAY_AND_AN_HOUR = 25 * 3600


class WorkerKilled(BaseException):
    """The worker died: not an ``Exception``, so no handler of the engine sees it."""


def _paid(c: Container, amount: int = 1000) -> Job:
    job = c.run_job("payment", payment_envelope("IE", amount))
    assert job.status == "succeeded", job.error
    return load(c, job.id)


def _refund_stage(c: Container) -> Any:
    return next(s for s in c.runner("refund").pipeline.stages if s.name == "refund")


def _kill_after_create(c: Container, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the next refund creation succeed at Stripe and then kill the worker; returns the ids Stripe made."""
    gateway = _refund_stage(c).stripe
    real = gateway.create_refund
    made: list[str] = []

    def create_then_die(*args: Any, **kwargs: Any) -> Any:
        refund = real(*args, **kwargs)
        made.append(refund.id)
        monkeypatch.setattr(gateway, "create_refund", real)  # only the first delivery dies
        raise WorkerKilled(f"killed after Stripe made {refund.id}")

    monkeypatch.setattr(gateway, "create_refund", create_then_die)
    return made


def _live(stripe_sim: Any, payment: Job) -> list[dict[str, Any]]:
    intent = payment.public["stripe"]["payment_intent"]
    return [r for r in sim_refunds(stripe_sim, intent) if r["status"] in ("succeeded", "pending")]


def _booked_refunds(c: Container, payment: Job) -> int:
    """What the ledger says was refunded of ``payment`` (credits to Stripe clearing by refund transactions)."""
    with c.db.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(ledger_entries.c.amount), 0))
            .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
            .where(
                ledger_transactions.c.kind == "refund",
                ledger_transactions.c.metadata["payment"].astext == payment.id,
                ledger_entries.c.account == "stripe_clearing",
            )
        ).scalar_one()
    return -int(value)


def _assert_money(c: Container, stripe_sim: Any, payment: Job) -> None:
    """Refunds never exceed the sale, and the ledger books exactly what Stripe refunded."""
    stripe_total = sum(r["amount"] for r in _live(stripe_sim, payment))
    assert stripe_total <= payment.public["amounts"]["total"]
    assert _booked_refunds(c, payment) == stripe_total
    assert verify(c.db).ok


def _webhook(c: Container, stripe_sim: Any, event_type: str, object_id: str) -> Job:
    """Run the webhook job of the newest sandbox event of ``event_type`` about ``object_id``."""
    events = httpx.get(f"{stripe_sim.base_url}/_sim/events").json()["data"]
    event = [e for e in events if e["type"] == event_type and e["data"]["object"]["id"] == object_id][-1]
    envelope = Envelope.new(
        kind="webhook", data=event, idempotency_scope=f"stripe:event:{event['id']}", group_id=object_id
    ).to_arg()
    return c.run_job("webhook", envelope)


@pytest.mark.parametrize("amount", [300, None], ids=["partial", "full"])
def test_replay_after_the_key_expired_finds_the_refund_instead_of_refunding_again(
    payment_container, stripe_sim, monkeypatch, amount
) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    envelope = refund_envelope(payment, amount)
    made = _kill_after_create(payment_container, monkeypatch)
    with pytest.raises(WorkerKilled):
        payment_container.run_job("refund", envelope)
    assert len(made) == 1 and [r["id"] for r in _live(stripe_sim, payment)] == made
    # Dead-lettered, replayed a day later: Stripe no longer knows the idempotency key.
    stripe_sim.clock.advance(DAY_AND_AN_HOUR)
    done = payment_container.run_job("refund", envelope)
    assert done.status == "succeeded", done.error
    assert done.public["stripe"]["refund"] == made[0]
    assert [r["id"] for r in _live(stripe_sim, payment)] == made, "refunded twice"
    assert [(r["status"], r["stripe_refund_id"]) for r in refund_rows(payment_container, payment.id)] == [
        ("succeeded", made[0])
    ]
    _assert_money(payment_container, stripe_sim, payment)


def test_redelivery_within_the_key_window_reuses_the_refund(payment_container, stripe_sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    envelope = refund_envelope(payment, 450)
    made = _kill_after_create(payment_container, monkeypatch)
    with pytest.raises(WorkerKilled):
        payment_container.run_job("refund", envelope)
    assert payment_container.run_job("refund", envelope).status == "succeeded"
    assert [r["id"] for r in _live(stripe_sim, payment)] == made
    _assert_money(payment_container, stripe_sim, payment)


def test_webhook_books_the_refund_of_a_job_that_died_and_the_job_adds_nothing(
    payment_container, stripe_sim, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    envelope = refund_envelope(payment, 400)
    made = _kill_after_create(payment_container, monkeypatch)
    with pytest.raises(WorkerKilled):
        payment_container.run_job("refund", envelope)
    # The job never comes back (dead-lettered, nobody replays it): charge.refunded books Stripe's refund.
    charge = _live(stripe_sim, payment)[0]["charge"]
    hook = _webhook(payment_container, stripe_sim, "charge.refunded", charge)
    assert hook.status == "succeeded" and hook.public["webhook"]["booked"] == made
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["succeeded"]
    _assert_money(payment_container, stripe_sim, payment)
    # Delivered again, it books nothing; and the job, replayed after the key expired, finds and adds nothing.
    again = _webhook(payment_container, stripe_sim, "charge.refunded", charge)
    assert again.public["webhook"]["outcome"] in ("nothing_new", "booked")
    stripe_sim.clock.advance(DAY_AND_AN_HOUR)
    assert payment_container.run_job("refund", envelope).status == "succeeded"
    assert [r["id"] for r in _live(stripe_sim, payment)] == made
    _assert_money(payment_container, stripe_sim, payment)


@pytest.mark.parametrize("crashed_first", [False, True], ids=["fresh", "after-crash-and-expiry"])
def test_two_copies_of_a_refund_racing_refund_once(payment_container, stripe_sim, monkeypatch, crashed_first) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    envelope = refund_envelope(payment, 500)
    if crashed_first:
        _kill_after_create(payment_container, monkeypatch)
        with pytest.raises(WorkerKilled):
            payment_container.run_job("refund", envelope)
        stripe_sim.clock.advance(DAY_AND_AN_HOUR)
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = payment_container.run_job("refund", envelope)
        except Exception as exc:  # a copy that loses a race may fail transiently; its redelivery then finishes
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if any(isinstance(r, Exception) for r in results):
        payment_container.run_job("refund", envelope)
    assert payment_container.ensure_job(Envelope.model_validate(envelope)).status == "succeeded"
    assert len(_live(stripe_sim, payment)) == 1
    _assert_money(payment_container, stripe_sim, payment)


def test_pending_refund_that_fails_is_reversed_and_frees_what_it_held(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    total = payment.public["amounts"]["total"]
    stripe_sim.configure(pending_refunds=True)
    first = payment_container.run_job("refund", refund_envelope(payment))  # everything
    assert first.status == "succeeded", first.error
    refund_id = first.public["stripe"]["refund"]
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["pending"]
    _assert_money(payment_container, stripe_sim, payment)
    # Nothing remains while it is pending.
    over = payment_container.run_job("refund", refund_envelope(payment, 1))
    assert over.status == "failed" and over.error["code"] == "refund_exceeds_captured"
    # The card network refuses it: Stripe gives the money back and says refund.failed.
    settled = httpx.post(f"{stripe_sim.base_url}/_sim/refunds/{refund_id}/settle", json={"result": "failed"})
    assert settled.status_code == 200 and settled.json()["status"] == "failed"
    hook = _webhook(payment_container, stripe_sim, "refund.failed", refund_id)
    assert hook.status == "succeeded" and hook.public["webhook"]["outcome"] == "reversed"
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["reversed"]
    assert _booked_refunds(payment_container, payment) == 0
    # The other events about the same change reverse nothing twice.
    for kind in ("refund.updated", "charge.refund.updated"):
        assert _webhook(payment_container, stripe_sim, kind, refund_id).public["webhook"]["outcome"] == "unchanged"
    assert _booked_refunds(payment_container, payment) == 0
    # What it held is refundable again, and a new refund (settling this time) takes it all.
    stripe_sim.configure(pending_refunds=False)
    second = payment_container.run_job("refund", refund_envelope(payment))
    assert second.status == "succeeded", second.error
    assert load(payment_container, second.id).view()["amounts"]["total"] == total
    _assert_money(payment_container, stripe_sim, payment)


def test_pending_refund_that_succeeds_is_settled(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    stripe_sim.configure(pending_refunds=True)
    job = payment_container.run_job("refund", refund_envelope(payment, 200))
    refund_id = job.public["stripe"]["refund"]
    httpx.post(f"{stripe_sim.base_url}/_sim/refunds/{refund_id}/settle", json={"result": "succeeded"})
    hook = _webhook(payment_container, stripe_sim, "charge.refund.updated", refund_id)
    assert hook.public["webhook"]["outcome"] == "settled"
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["succeeded"]
    _assert_money(payment_container, stripe_sim, payment)


def test_pending_refund_failing_before_the_job_booked_it_ends_the_job_failed(
    payment_container, stripe_sim, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    stripe_sim.configure(pending_refunds=True)
    envelope = refund_envelope(payment, 300)
    made = _kill_after_create(payment_container, monkeypatch)
    with pytest.raises(WorkerKilled):
        payment_container.run_job("refund", envelope)
    httpx.post(f"{stripe_sim.base_url}/_sim/refunds/{made[0]}/settle", json={"result": "failed"})
    hook = _webhook(payment_container, stripe_sim, "refund.failed", made[0])
    assert hook.public["webhook"]["outcome"] == "released"
    done = payment_container.run_job("refund", envelope)
    assert done.status == "failed" and done.error["code"] == "refund_failed"
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["failed"]
    _assert_money(payment_container, stripe_sim, payment)


def test_refund_booked_by_the_webhook_then_failed_is_reversed_once_and_the_replayed_job_fails(
    payment_container, stripe_sim, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    stripe_sim.configure(pending_refunds=True)
    envelope = refund_envelope(payment, 600)
    made = _kill_after_create(payment_container, monkeypatch)
    with pytest.raises(WorkerKilled):
        payment_container.run_job("refund", envelope)
    charge = _live(stripe_sim, payment)[0]["charge"]
    assert _webhook(payment_container, stripe_sim, "charge.refunded", charge).public["webhook"]["booked"] == made
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["pending"]
    httpx.post(f"{stripe_sim.base_url}/_sim/refunds/{made[0]}/settle", json={"result": "failed"})
    assert _webhook(payment_container, stripe_sim, "refund.failed", made[0]).public["webhook"]["outcome"] == "reversed"
    done = payment_container.run_job("refund", envelope)
    assert done.status == "failed" and done.error["code"] == "refund_failed"
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["reversed"]
    _assert_money(payment_container, stripe_sim, payment)


def test_a_timeout_while_stripe_still_processes_repeats_the_same_key_and_refunds_once(
    payment_container, stripe_sim
) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    envelope = refund_envelope(payment, 350)
    # The connection drops while Stripe is still making the refund: no lookup can see it yet.
    stripe_sim.configure(drop_in_flight_rate=1.0, in_flight_seconds=2.0)
    with pytest.raises(Exception, match="Stripe"):
        payment_container.run_job("refund", envelope)
    stripe_sim.configure(drop_in_flight_rate=0.0)
    # Redeliveries come at once: their lookup misses the refund, their create (same key) meets the 409 (retried,
    # or given back) until Stripe saved its answer, then gets it — never a second refund.
    done = None
    for _ in range(10):
        try:
            done = payment_container.run_job("refund", envelope)
            break
        except (TransientError, Retry):  # a 409 "key in flight" is given back without spending an attempt
            time.sleep(0.5)
    assert done is not None and done.status == "succeeded", done
    assert len(_live(stripe_sim, payment)) == 1
    _assert_money(payment_container, stripe_sim, payment)


def test_a_saved_500_moves_to_a_new_key_only_when_stripe_has_no_refund(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    envelope = refund_envelope(payment, 250)
    method = _live_payment_method(stripe_sim, payment)
    stripe_sim.configure(fail_payment_methods=[method])  # refunds of this card's charges answer a saved 500
    for _ in range(2):
        with pytest.raises(Exception, match="Stripe"):
            payment_container.run_job("refund", envelope)
    stripe_sim.configure(fail_payment_methods=[])
    done = payment_container.run_job("refund", envelope)
    assert done.status == "succeeded", done.error
    assert done.stage_results["refund"]["generation"] >= 2  # g1 kept replaying its 500
    assert len(_live(stripe_sim, payment)) == 1
    _assert_money(payment_container, stripe_sim, payment)


def _live_payment_method(stripe_sim: Any, payment: Job) -> str:
    intent = payment.public["stripe"]["payment_intent"]
    data = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents").json()["data"]
    return str(next(pi for pi in data if pi["id"] == intent)["payment_method"])
