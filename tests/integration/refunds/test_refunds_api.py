"""``POST /v1/refunds``: roles, idempotency, the 404 for an unknown payment, and the 202 job on refunds.fifo."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.ingest.app import create_app
from tests.integration.refunds.helpers import load, payment_envelope, queued


@pytest.fixture
def api(payment_container) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(payment_container))


def _headers(settings: Any, role: str, key: str | None = None) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {mint(settings, role, sub='support-1')}",
        "Idempotency-Key": key or uuid.uuid4().hex,
    }


def test_support_refunds_a_payment_through_the_api(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    payment = payment_container.run_job("payment", payment_envelope())
    settings = payment_container.settings
    viewer = api.post("/v1/refunds", json={"payment": payment.id}, headers=_headers(settings, "viewer"))
    assert viewer.status_code == 403
    missing = api.post("/v1/refunds", json={"payment": "job_nope"}, headers=_headers(settings, "support"))
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "payment"
    bad = api.post("/v1/refunds", json={"payment": payment.id, "amount": 0}, headers=_headers(settings, "support"))
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "amount"
    headers = _headers(settings, "support")
    answer = api.post(
        "/v1/refunds", json={"payment": payment.id, "amount": 230, "reason": "duplicate"}, headers=headers
    )
    assert answer.status_code == 202, answer.json()
    job = answer.json()
    assert job["kind"] == "refund" and job["status"] == "accepted" and job["refund"]["payment"] == payment.id
    replay = api.post(
        "/v1/refunds", json={"payment": payment.id, "amount": 230, "reason": "duplicate"}, headers=headers
    )
    assert replay.status_code == 202 and replay.json()["id"] == job["id"]
    reused = api.post("/v1/refunds", json={"payment": "job_nope", "amount": 1}, headers=headers)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    [message] = queued(payment_container, "refunds", wait=3)
    assert message["job_id"] == job["id"] and message["group_id"] == payment.customer_id
    done = payment_container.run_job("refund", message)
    assert done.status == "succeeded"
    view = load(payment_container, job["id"]).view()
    assert view["amounts"] == {"net": 187, "vat": 43, "total": 230, "currency": "eur"}
    assert view["stripe"]["refund"].startswith("re_")


def test_refunds_that_cannot_succeed_are_refused_with_422_at_once(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    """A payment that charged nothing → 422 payment_not_captured; more than remains → 422
    refund_exceeds_captured with the remaining amount in the message.  No refund job, no Stripe call, nothing
    booked."""
    from engine.db.ledger import verify

    settings = payment_container.settings
    declined = payment_container.run_job("payment", payment_envelope(payment_method="pm_card_chargeDeclined"))
    assert declined.status == "failed"
    refused = api.post("/v1/refunds", json={"payment": declined.id}, headers=_headers(settings, "support"))
    assert refused.status_code == 422, refused.json()
    assert refused.json()["error"]["code"] == "payment_not_captured"

    paid = payment_container.run_job("payment", payment_envelope())  # 10.00 + 23 % = 12.30
    first = api.post("/v1/refunds", json={"payment": paid.id, "amount": 1000}, headers=_headers(settings, "support"))
    assert first.status_code == 202
    payment_container.run_job("refund", queued(payment_container, "refunds", wait=3)[0])
    over = api.post("/v1/refunds", json={"payment": paid.id, "amount": 231}, headers=_headers(settings, "support"))
    assert over.status_code == 422, over.json()
    error = over.json()["error"]
    assert error["code"] == "refund_exceeds_captured" and error["param"] == "amount"
    assert "2.30" in error["message"] and "230 minor units" in error["message"]
    exact = api.post("/v1/refunds", json={"payment": paid.id, "amount": 230}, headers=_headers(settings, "support"))
    assert exact.status_code == 202
    payment_container.run_job("refund", queued(payment_container, "refunds", wait=3)[0])
    nothing_left = api.post("/v1/refunds", json={"payment": paid.id}, headers=_headers(settings, "support"))
    assert nothing_left.status_code == 422 and nothing_left.json()["error"]["code"] == "refund_exceeds_captured"
    assert "0.00" in nothing_left.json()["error"]["message"]
    assert verify(payment_container.db).ok
