"""The answer headers the OpenAPI document promises (issue 16): ``Location`` on a 202, ``Idempotent-Replayed`` on
a saved answer answered again (not on a first answer nor on a refusal), ``WWW-Authenticate`` on a 401."""

from __future__ import annotations

import uuid
from typing import Any

from engine.ingest.schemas import Job

PAYMENT: dict[str, Any] = {
    "customer": {"id": "cus_contract_1", "email": "anna@example.ie", "country": "IE", "type": "consumer"},
    "amount": 1000,
    "currency": "EUR",
    "payment_method": "pm_card_visa",
}


def test_accepted_job_has_location_and_a_replay_says_so(api, auth) -> None:  # type: ignore[no-untyped-def]
    key = f"key-{uuid.uuid4().hex}"
    first = api.post("/v1/payments", json=PAYMENT, headers=auth(key=key))
    assert first.status_code == 202, first.json()
    job = first.json()["id"]
    Job.model_validate(first.json())  # the answer is what the document's Job promises
    assert first.headers["Location"] == f"/v1/jobs/{job}"
    assert "Idempotent-Replayed" not in first.headers
    assert api.get(first.headers["Location"], headers=auth("viewer", key=None)).json()["id"] == job

    again = api.post("/v1/payments", json=PAYMENT, headers=auth(key=key))
    assert again.status_code == 202 and again.json()["id"] == job
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == f"/v1/jobs/{job}"

    other = api.post("/v1/payments", json={**PAYMENT, "amount": 2000}, headers=auth(key=key))
    assert other.status_code == 422 and "Idempotent-Replayed" not in other.headers


def test_refund_replay_answered_before_the_payment_lookup_says_so(api, auth) -> None:  # type: ignore[no-untyped-def]
    paid = api.post("/v1/payments", json=PAYMENT, headers=auth(key=f"key-{uuid.uuid4().hex}"))
    refund = {"payment": paid.json()["id"], "amount": 500}
    key = f"key-{uuid.uuid4().hex}"
    first = api.post("/v1/refunds", json=refund, headers=auth(key=key))
    assert first.status_code == 202, first.json()
    assert first.headers["Location"] == f"/v1/jobs/{first.json()['id']}"
    assert "Idempotent-Replayed" not in first.headers
    again = api.post("/v1/refunds", json=refund, headers=auth(key=key))
    assert again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"


def test_a_401_carries_www_authenticate_and_a_403_does_not(api, auth) -> None:  # type: ignore[no-untyped-def]
    missing = api.post("/v1/payments", json=PAYMENT, headers={"Idempotency-Key": "k-1"})
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    forbidden = api.post("/v1/payments", json=PAYMENT, headers=auth("viewer", key="k-2"))
    assert forbidden.status_code == 403 and "WWW-Authenticate" not in forbidden.headers
