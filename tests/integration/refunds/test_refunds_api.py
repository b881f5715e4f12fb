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
