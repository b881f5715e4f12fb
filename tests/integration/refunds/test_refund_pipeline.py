"""The refund pipeline against the real database, SQS endpoint and the Stripe sandbox (official SDK, no mocks)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine.db.ledger import verify
from engine.runtime.container import Container
from tests.integration.refunds.helpers import (
    entries_of,
    load,
    payment_envelope,
    queued,
    refund_envelope,
    refund_rows,
    sim_refunds,
)


def _paid(payment_container: Container, country: str = "IE", amount: int = 1000, **kw: Any):  # type: ignore[no-untyped-def]
    job = payment_container.run_job("payment", payment_envelope(country, amount, **kw))
    assert job.status == "succeeded", job.error
    return load(payment_container, job.id)


@pytest.mark.parametrize(
    ("country", "amount", "behavior"),
    [("IE", 1999, "exclusive"), ("DE", 1001, "exclusive"), ("HU", 4999, "inclusive"), ("FI", 777, "exclusive")],
)
def test_partial_then_full_refunds_reconcile_to_the_minor_unit(
    payment_container, stripe_sim, country, amount, behavior
) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container, country, amount, tax_behavior=behavior)
    amounts = payment.public["amounts"]
    total, net, vat = amounts["total"], amounts["net"], amounts["vat"]
    parts = [total // 3, total // 7 + 1]
    jobs = [payment_container.run_job("refund", refund_envelope(payment, part)) for part in parts]
    jobs.append(payment_container.run_job("refund", refund_envelope(payment)))  # all that remains
    assert [j.status for j in jobs] == ["succeeded"] * 3, [j.error for j in jobs]
    views = [load(payment_container, j.id).view() for j in jobs]
    assert sum(v["amounts"]["total"] for v in views) == total
    assert sum(v["amounts"]["net"] for v in views) == net
    assert sum(v["amounts"]["vat"] for v in views) == vat
    for v in views:  # each partial refund's VAT is the payment's share, within one minor unit of exact
        share = v["amounts"]["total"] * vat / total
        assert abs(v["amounts"]["vat"] - share) <= 1 and v["ledger_transaction"]
    # The ledger: the payment's VAT is fully reversed, refunds carry the whole net, clearing is back to zero.
    balance: dict[str, int] = {}
    for account, value in entries_of(payment_container, [payment.id, *[j.id for j in jobs]]):
        balance[account] = balance.get(account, 0) + value
    assert balance.get(f"vat_payable:{country}", 0) == 0
    # Stripe keeps its fee on a refunded charge: what is left on clearing is the fee the payment booked.
    assert balance["refunds"] == net and balance["revenue"] == -net
    assert balance["fees"] > 0 and balance["stripe_clearing"] == -balance["fees"]
    # Stripe: one refund per job, each carrying its job id, summing to the charge.
    made = sim_refunds(stripe_sim, payment.public["stripe"]["payment_intent"])
    assert sorted(r["metadata"]["job_id"] for r in made) == sorted(j.id for j in jobs)
    assert sum(r["amount"] for r in made) == total
    # Nothing is left: one more refund fails as a business outcome, and Stripe is not asked.
    over = payment_container.run_job("refund", refund_envelope(payment, 1))
    assert over.status == "failed" and over.error and over.error["code"] == "refund_exceeds_captured"
    assert len(sim_refunds(stripe_sim, payment.public["stripe"]["payment_intent"])) == 3
    # A duplicate delivery of a finished refund changes nothing.
    assert payment_container.run_job("refund", refund_envelope(payment, 1)).status == "failed"
    assert verify(payment_container.db).ok


def test_redelivered_refund_is_refunded_and_booked_once(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)
    envelope = refund_envelope(payment, 300)
    first = payment_container.run_job("refund", envelope)
    again = payment_container.run_job("refund", envelope)
    assert first.id == again.id and again.status == "succeeded"
    assert len(sim_refunds(stripe_sim, payment.public["stripe"]["payment_intent"])) == 1
    assert len([e for e in entries_of(payment_container, [first.id]) if e[0] == "stripe_clearing"]) == 1


def test_two_concurrent_partial_refunds_exceeding_the_payment_exactly_one_succeeds(
    payment_container, stripe_sim
) -> None:  # type: ignore[no-untyped-def]
    payment = _paid(payment_container)  # 1230 with Irish VAT
    envelopes = [refund_envelope(payment, 800), refund_envelope(payment, 800)]
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = payment_container.run_job("refund", envelopes[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status for r in results)
    assert statuses == ["failed", "succeeded"]
    failed = next(r for r in results if r.status == "failed")
    assert failed.error["code"] == "refund_exceeds_captured"
    made = sim_refunds(stripe_sim, payment.public["stripe"]["payment_intent"])
    assert [r["amount"] for r in made] == [800]
    assert [r["status"] for r in refund_rows(payment_container, payment.id)].count("succeeded") == 1
    assert verify(payment_container.db).ok


def test_refund_of_a_payment_still_processing_waits_then_completes(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    from engine.broker.envelope import Envelope

    envelope = payment_envelope("DE", 2500)
    payment = payment_container.ensure_job(Envelope.model_validate(envelope))  # accepted, not yet run
    refund = payment_container.run_job("refund", refund_envelope(payment, 1000))
    assert refund.status == "processing" and refund.public["held"]["reason"] == "payment_not_settled"
    assert [r["status"] for r in refund_rows(payment_container, payment.id)] == ["held"]
    assert queued(payment_container, "refunds") == []  # held in the database, not retried through SQS
    # The payment completes; its runner releases the refund by sending its message again.
    assert payment_container.run_job("payment", envelope).status == "succeeded"
    released = queued(payment_container, "refunds", wait=5)
    assert [m["job_id"] for m in released] == [refund.id]
    done = payment_container.run_job("refund", released[0])
    assert done.status == "succeeded"
    assert load(payment_container, refund.id).view()["amounts"] == {
        "net": 840,
        "vat": 160,
        "total": 1000,
        "currency": "eur",
    }
    assert verify(payment_container.db).ok


def test_held_refund_is_released_by_the_janitor_when_the_worker_died_before(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from engine.broker.envelope import Envelope
    from pipelines.webhook import janitor

    envelope = payment_envelope()
    payment = payment_container.ensure_job(Envelope.model_validate(envelope))
    refund = payment_container.run_job("refund", refund_envelope(payment))
    assert refund.status == "processing"
    # The payment settles through a plain runner (as if the worker died before releasing).
    from engine.jobs.pipeline import PipelineRunner

    plain = PipelineRunner(payment_container.db, payment_container.runner("payment").pipeline)
    assert plain.run(payment.id).status == "succeeded"
    assert queued(payment_container, "refunds") == []
    report = payment_container.build(janitor.run, now=datetime.now(UTC))
    assert report.startswith("1 held refund(s) released")
    released = queued(payment_container, "refunds", wait=5)
    assert payment_container.run_job("refund", released[0]).status == "succeeded"


def test_refund_of_a_failed_payment_fails_payment_not_captured(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    declined = payment_container.run_job("payment", payment_envelope(payment_method="pm_card_chargeDeclined"))
    assert declined.status == "failed"
    refund = payment_container.run_job("refund", refund_envelope(load(payment_container, declined.id)))
    assert refund.status == "failed" and refund.error and refund.error["code"] == "payment_not_captured"
    assert httpx_refunds(stripe_sim) == []


def test_refund_of_an_unknown_payment_fails(payment_container) -> None:  # type: ignore[no-untyped-def]
    from engine.jobs.job import Job

    ghost = Job(
        id="job_doesnotexist",
        kind="payment",
        status="succeeded",
        stage=None,
        idempotency_scope="x",
        queue="payments.fifo",
        group_id="cus_x",
        request={},
        customer_id="cus_x",
    )
    refund = payment_container.run_job("refund", refund_envelope(ghost))
    assert refund.status == "failed" and refund.error and refund.error["code"] == "payment_not_found"


def httpx_refunds(stripe_sim) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    import httpx

    return list(httpx.get(f"{stripe_sim.base_url}/_sim/refunds").json()["data"])
