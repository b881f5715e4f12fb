"""``POST /webhooks/stripe`` and the webhook pipeline: real ingest app, database, SQS endpoint and Stripe sandbox."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from engine.db.ledger import verify
from engine.db.tables import jobs, ledger_transactions
from engine.db.tables_refunds import stripe_events
from engine.ingest.internal import create_internal_app
from engine.runtime.container import Container
from tests.integration.refunds.helpers import (
    entries_of,
    load,
    payment_envelope,
    queued,
    refund_envelope,
    refund_rows,
    signed,
    sim_events,
    stripe_client,
)

OLD_SECRET = "whsec_old_rotating_out"
SECRET = "whsec_current_secret"


@pytest.fixture
def container(payment_settings):  # type: ignore[no-untyped-def]
    from engine.broker.queues import provision
    from engine.runtime.container import Container
    from engine.runtime.endpoints import resolve_endpoints

    stripe_settings = payment_settings.stripe.model_copy(
        update={"webhook_secrets": SecretStr(f"{OLD_SECRET},{SECRET}")}
    )
    settings = payment_settings.model_copy(update={"stripe": stripe_settings})
    c = Container(settings=settings, endpoints=resolve_endpoints(settings))
    provision(c.sqs, settings.queue_prefix, c.queues)
    return c


@pytest.fixture
def api(container) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(container))


def create_app(container: Any) -> Any:
    from engine.ingest.app import create_app as make

    return make(container)


def _deliver(api: TestClient, event: dict[str, Any], secret: str = SECRET, timestamp: int | None = None) -> Any:
    body, headers = signed(event, secret, timestamp)
    return api.post("/webhooks/stripe", content=body, headers=headers)


def _process_webhooks(container: Container) -> list[Any]:
    return [container.run_job("webhook", m) for m in queued(container, "webhooks", wait=3)]


def _counts(container: Container) -> tuple[int, int, int]:
    with container.db.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(stripe_events)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(jobs).where(jobs.c.kind == "webhook")).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(ledger_transactions)).scalar_one(),
        )


def test_three_d_secure_payment_completes_via_webhook(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    envelope = payment_envelope("FI", 2000, payment_method="pm_card_threeDSecure2Required")
    parked = container.run_job("payment", envelope)
    assert parked.status == "requires_action"
    # A refund asked for meanwhile is held until the payment settles.
    refund = container.run_job("refund", refund_envelope(load(container, parked.id), 500))
    assert refund.status == "processing"
    intent = load(container, parked.id).public["stripe"]["payment_intent"]
    done = httpx.post(f"{stripe_sim.base_url}/_sim/payment_intents/{intent}/authenticate", json={"result": "succeeded"})
    assert done.status_code == 200
    event = next(e for e in sim_events(stripe_sim, "payment_intent.succeeded") if e["data"]["object"]["id"] == intent)
    answer = _deliver(api, event)
    assert answer.status_code == 200 and answer.json()["duplicate"] is False
    [handled] = _process_webhooks(container)
    assert handled.status == "succeeded" and handled.stage_results["handle"]["outcome"] == "resumed"
    # The payment's message was sent again; the worker finishes it from the recorded intent (no second charge).
    [resent] = queued(container, "payments", wait=3)
    finished = container.run_job("payment", resent)
    assert finished.status == "succeeded" and finished.stage == "notify"
    view = load(container, parked.id).view()
    assert view["ledger_transaction"] and view["next_action"] is None
    charges = httpx.get(f"{stripe_sim.base_url}/_sim/charges", params={"job_id": parked.id}).json()["data"]
    assert [c["status"] for c in charges] == ["succeeded"]
    # ... and the held refund was released and completes.
    [released] = queued(container, "refunds", wait=3)
    assert container.run_job("refund", released).status == "succeeded"
    assert verify(container.db).ok


def test_failed_authentication_fails_the_payment_via_webhook(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    parked = container.run_job("payment", payment_envelope(payment_method="pm_card_threeDSecure2Required"))
    intent = load(container, parked.id).public["stripe"]["payment_intent"]
    httpx.post(f"{stripe_sim.base_url}/_sim/payment_intents/{intent}/authenticate", json={"result": "failed"})
    event = next(
        e for e in sim_events(stripe_sim, "payment_intent.payment_failed") if e["data"]["object"]["id"] == intent
    )
    assert _deliver(api, event).status_code == 200
    _process_webhooks(container)
    [resent] = queued(container, "payments", wait=3)
    failed = container.run_job("payment", resent)
    assert failed.status == "failed" and failed.error["code"] == "payment_intent_authentication_failure"


def test_dashboard_refund_is_booked_once_and_engine_refunds_are_not_booked_twice(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = container.run_job("payment", payment_envelope("HU", 10000))
    payment = load(container, payment.id)
    intent = payment.public["stripe"]["payment_intent"]
    engine_refund = container.run_job("refund", refund_envelope(payment, 2000))
    assert engine_refund.status == "succeeded"
    dashboard = stripe_client(stripe_sim).v1.refunds.create(params={"payment_intent": intent, "amount": 3000})
    events = [e for e in sim_events(stripe_sim, "charge.refunded") if e["data"]["object"]["payment_intent"] == intent]
    assert len(events) == 2
    for event in events:
        assert _deliver(api, event).status_code == 200
    outcomes = sorted(j.stage_results["handle"]["outcome"] for j in _process_webhooks(container))
    assert outcomes == ["booked", "nothing_new"]
    # Duplicate deliveries answer 200 and change nothing.
    before = _counts(container)
    for event in events:
        again = _deliver(api, event)
        assert again.status_code == 200 and again.json()["duplicate"] is True
    assert _process_webhooks(container) == [] and _counts(container) == before
    rows = refund_rows(container, payment.id)
    assert sorted((r["source"], r["amount"]) for r in rows) == [("engine", 2000), ("stripe", 3000)]
    assert [r["stripe_refund_id"] for r in rows if r["source"] == "stripe"] == [dashboard.id]
    with container.db.connect() as conn:
        keys = (
            conn.execute(sa.select(ledger_transactions.c.effect_key).where(ledger_transactions.c.kind == "refund"))
            .scalars()
            .all()
        )
    assert f"refund:{dashboard.id}:issue" in keys and f"refund:{engine_refund.id}:issue" in keys
    # What remains (total - 5000) can still be refunded by the engine, and its VAT takes the remainder.
    rest = container.run_job("refund", refund_envelope(payment))
    assert rest.status == "succeeded"
    rows = refund_rows(container, payment.id)
    assert sum(r["vat"] for r in rows) == payment.public["amounts"]["vat"]
    assert sum(r["amount"] for r in rows) == payment.public["amounts"]["total"]
    assert verify(container.db).ok


def test_forged_stale_and_unsigned_deliveries_change_nothing(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    parked = container.run_job("payment", payment_envelope(payment_method="pm_card_threeDSecure2Required"))
    intent = load(container, parked.id).public["stripe"]["payment_intent"]
    httpx.post(f"{stripe_sim.base_url}/_sim/payment_intents/{intent}/authenticate", json={"result": "succeeded"})
    event = next(e for e in sim_events(stripe_sim, "payment_intent.succeeded") if e["data"]["object"]["id"] == intent)
    before = _counts(container)
    forged = _deliver(api, event, secret="whsec_attacker")
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "signature_invalid"
    stale = _deliver(api, event, timestamp=int(time.time()) - 400)  # a replay of a once-valid delivery
    assert stale.status_code == 400 and stale.json()["error"]["code"] == "signature_stale"
    body, _ = signed(event, SECRET)
    unsigned = api.post("/webhooks/stripe", content=body)
    assert unsigned.status_code == 400
    tampered_body, headers = signed(event, SECRET)
    tampered = api.post("/webhooks/stripe", content=tampered_body.replace(b"succeeded", b"failed!!!"), headers=headers)
    assert tampered.status_code == 400
    assert _counts(container) == before and queued(container, "webhooks") == []
    assert load(container, parked.id).status == "requires_action"
    metrics = TestClient(create_internal_app(container)).get("/metrics").text
    assert (
        'payments_webhooks_total{outcome="forged"}' in metrics and 'payments_webhooks_total{outcome="stale"}' in metrics
    )
    # The old secret of a rotation is still accepted.
    assert _deliver(api, event, secret=OLD_SECRET).status_code == 200


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"id": "evt_1", "type": "charge.refunded", "x": "\xe9"}', b"\x80"])
def test_a_body_that_is_not_utf8_is_refused_400_not_500(container, api, body) -> None:  # type: ignore[no-untyped-def]
    # Issue 14 item 12: the SDK's signature check used to raise UnicodeDecodeError on it (a 500).
    from tests.integration.refunds.helpers import signature_header

    headers = {"Stripe-Signature": signature_header("{}", SECRET), "Content-Type": "application/json"}
    answer = api.post("/webhooks/stripe", content=body, headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "signature_invalid"
    assert queued(container, "webhooks") == []


def test_dispute_is_noted_on_the_payment_and_booked_once(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = load(container, container.run_job("payment", payment_envelope("IE", 1000)).id)
    intent = payment.public["stripe"]["payment_intent"]
    charge = payment.stage_results["charge"]["charge"]
    event = {
        "id": "evt_dispute_test_1",
        "object": "event",
        "type": "charge.dispute.created",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "dp_test_1",
                "object": "dispute",
                "amount": 1230,
                "currency": "eur",
                "charge": charge,
                "payment_intent": intent,
                "reason": "fraudulent",
                "status": "needs_response",
            }
        },
    }
    assert _deliver(api, event).status_code == 200
    [handled] = _process_webhooks(container)
    assert handled.stage_results["handle"]["outcome"] == "booked"
    dispute = load(container, payment.id).view()["dispute"]
    assert dispute["id"] == "dp_test_1" and dispute["amount"] == 1230 and dispute["ledger_transaction"]
    # Processing the same job again (a redelivery after a crash) books nothing more.
    from engine.jobs.pipeline import PipelineRunner

    runner = container.runner("webhook")
    assert isinstance(runner, PipelineRunner)
    with container.db.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == handled.id).values(status="processing", stage=None))
    runner.run(handled.id)
    mine = [e for e in entries_of(container, [payment.id]) if e[0].startswith("receivable:")]
    assert mine == [(f"receivable:{payment.customer_id}", 1230)]
    assert verify(container.db).ok
