"""Fraud review: approve resumes the pipeline after the fraud stage; decline fails the job; roles and states hold."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.broker.envelope import Envelope
from engine.db.tables import outbox
from engine.ingest.app import create_app
from engine.runtime.container import Container


@pytest.fixture
def api(payment_container) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(payment_container))


def _headers(settings: Any, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings, role, sub='reviewer-1')}"}


def _parked(payment_container: Container) -> tuple[dict[str, Any], str]:
    customer = {"id": f"cus_{uuid.uuid4().hex[:8]}", "email": "big@example.ie", "country": "IE"}
    data = {"customer": customer, "amount": 900_000, "currency": "eur", "payment_method": "pm_card_visa"}
    envelope = Envelope.new(
        kind="payment", data=data, idempotency_scope=f"t:{uuid.uuid4()}", group_id=customer["id"]
    ).to_arg()
    job = payment_container.run_job("payment", envelope)
    assert job.status == "in_review"
    return envelope, job.id


def _queued(container) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    url = container.sqs.get_queue_url(QueueName=container.settings.queue_prefix + "payments.fifo")["QueueUrl"]
    got = container.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_approve_resumes_after_fraud_and_charges_once(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    _, job_id = _parked(payment_container)
    settings = payment_container.settings
    assert (
        api.post(
            f"/v1/jobs/{job_id}/review", json={"decision": "approve"}, headers=_headers(settings, "operator")
        ).status_code
        == 403
    )
    answer = api.post(f"/v1/jobs/{job_id}/review", json={"decision": "approve"}, headers=_headers(settings, "support"))
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "processing"
    assert answer.json()["review"]["decision"] == "approve" and answer.json()["review"]["by"] == "reviewer-1"
    resent = _queued(payment_container)
    assert [m["job_id"] for m in resent] == [job_id]
    # The worker picks the re-sent message up: the pipeline continues after the fraud stage.
    job = payment_container.run_job("payment", resent[0])
    assert job.status == "succeeded" and job.stage == "notify"
    intents = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents").json()["data"]
    assert [pi["status"] for pi in intents if pi["metadata"].get("job_id") == job_id] == ["succeeded"]
    again = api.post(f"/v1/jobs/{job_id}/review", json={"decision": "decline"}, headers=_headers(settings, "admin"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_not_in_review"


def test_decline_fails_the_job_and_announces_it(payment_container, api) -> None:  # type: ignore[no-untyped-def]
    _, job_id = _parked(payment_container)
    answer = api.post(
        f"/v1/jobs/{job_id}/review", json={"decision": "decline"}, headers=_headers(payment_container.settings, "admin")
    )
    assert answer.status_code == 200
    assert answer.json()["status"] == "failed" and answer.json()["error"]["code"] == "review_declined"
    with payment_container.db.connect() as conn:
        events = (
            conn.execute(sa.select(outbox.c.event_type).where(outbox.c.job_id == job_id).order_by(outbox.c.id))
            .scalars()
            .all()
        )
    assert events == ["job.in_review", "job.failed"]
    assert _queued(payment_container) == []


def test_bad_decision_and_unknown_job(payment_container, api) -> None:  # type: ignore[no-untyped-def]
    headers = _headers(payment_container.settings, "admin")
    bad = api.post("/v1/jobs/job_nope/review", json={"decision": "maybe"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "decision"
    missing = api.post("/v1/jobs/job_nope/review", json={"decision": "approve"}, headers=headers)
    assert missing.status_code == 404
