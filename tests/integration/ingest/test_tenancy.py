"""Merchants (tenants) through the API: two merchants on one engine never see, refund, review or share each other's
jobs, subscriptions, idempotency keys or Stripe customers; ``client_secret`` only for the job's creator.

The real stack: PostgreSQL, Redis, local SQS and the Stripe sandbox, the ingest app in-process, payment jobs run
through their real pipeline (``Container.run_job``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.audit.chain import seal
from engine.db.tables_audit import audit_records
from engine.ingest.app import create_app
from engine.jobs.job import Job
from engine.ops.review import in_review
from engine.runtime.container import Container
from tests.integration.refunds.helpers import load, queued

A, B = "acct_alpha", "acct_beta"


@pytest.fixture
def api(payment_container: Container) -> TestClient:
    return TestClient(create_app(payment_container))


def _headers(c: Container, merchant: str, role: str, sub: str, key: str | None = None) -> dict[str, str]:
    token = mint(c.settings, role, sub=sub, merchant=merchant, ttl_seconds=600)
    return {"Authorization": f"Bearer {token}", "Idempotency-Key": key or uuid.uuid4().hex}


def _payment(customer: str, pm: str = "pm_card_visa", amount: int = 1000) -> dict[str, Any]:
    who = {"id": customer, "email": "anna@example.ie", "country": "IE"}
    return {"customer": who, "amount": amount, "currency": "eur", "payment_method": pm}


def _pay(api: TestClient, c: Container, merchant: str, customer: str, sub: str = "op", **kw: Any) -> Job:
    """A payment accepted through the API for ``merchant`` and run through its pipeline."""
    answer = api.post("/v1/payments", json=_payment(customer, **kw), headers=_headers(c, merchant, "operator", sub))
    assert answer.status_code == 202, answer.json()
    job_id = answer.json()["id"]
    [message] = [m for m in queued(c, "payments", wait=3) if m["job_id"] == job_id]
    return c.run_job("payment", message)


def _customer() -> str:
    return f"cus_{uuid.uuid4().hex[:10]}"


def test_each_merchant_lists_and_gets_only_its_own_jobs(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    mine = _pay(api, c, A, _customer())
    theirs = _pay(api, c, B, _customer())
    assert (load(c, mine.id).merchant_id, load(c, theirs.id).merchant_id) == (A, B)
    viewer_a = _headers(c, A, "viewer", "a-viewer")
    listed = api.get("/v1/jobs", params={"limit": 100}, headers=viewer_a).json()
    ids = {j["id"] for j in listed["data"]}
    assert mine.id in ids and theirs.id not in ids
    assert api.get(f"/v1/jobs/{mine.id}", headers=viewer_a).status_code == 200
    # Another merchant's job is not found, exactly like an id that does not exist (ids cannot be probed).
    foreign = api.get(f"/v1/jobs/{theirs.id}", headers=viewer_a)
    unknown = api.get("/v1/jobs/job_doesnotexist", headers=viewer_a)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"
    # Nor can its id anchor a page, nor its customer be listed.
    assert api.get("/v1/jobs", params={"starting_after": theirs.id}, headers=viewer_a).status_code == 404
    assert api.get("/v1/jobs", params={"ending_before": theirs.id}, headers=viewer_a).status_code == 404
    by_customer = api.get("/v1/jobs", params={"customer": theirs.customer_id}, headers=viewer_a).json()
    assert by_customer["data"] == []


def test_cursor_pagination_stays_within_the_merchant(payment_container, api) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    merchant = f"acct_{uuid.uuid4().hex[:8]}"
    made = []
    for i in range(3):
        for m in (merchant, B):
            h = _headers(c, m, "operator", "op")
            answer = api.post("/v1/payments", json=_payment(f"cus_page_{i}"), headers=h)
            assert answer.status_code == 202
            if m == merchant:
                made.append(answer.json()["id"])
    viewer = _headers(c, merchant, "viewer", "v")
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = api.get("/v1/jobs", params=params, headers=viewer).json()
        seen += [j["id"] for j in page["data"]]
        if not page["has_more"]:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == list(reversed(made))


def test_refunding_another_merchants_payment_is_404(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    paid = _pay(api, c, A, _customer())
    assert paid.status == "succeeded"
    for role in ("operator", "support", "admin"):
        refused = api.post("/v1/refunds", json={"payment": paid.id}, headers=_headers(c, B, role, "b-op"))
        assert refused.status_code == 404, refused.json()
        assert refused.json()["error"] == {
            "type": "invalid_request_error",
            "code": "not_found",
            "message": f"No charge {paid.id}.",
            "param": "payment",
        }
    assert queued(c, "refunds") == []
    own = api.post("/v1/refunds", json={"payment": paid.id}, headers=_headers(c, A, "operator", "a-op"))
    assert own.status_code == 202, own.json()
    assert load(c, own.json()["id"]).merchant_id == A


def test_client_secret_is_shown_only_to_the_subject_that_created_the_job(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    job = _pay(api, c, A, _customer(), sub="a-checkout", pm="pm_card_threeDSecure2Required")
    assert job.status == "requires_action"
    assert load(c, job.id).created_by == "a-checkout"

    def stripe_block(role: str, sub: str) -> dict[str, Any]:
        answer = api.get(f"/v1/jobs/{job.id}", headers=_headers(c, A, role, sub))
        assert answer.status_code == 200
        listed = api.get("/v1/jobs", params={"limit": 100}, headers=_headers(c, A, role, sub)).json()["data"]
        [same] = [j for j in listed if j["id"] == job.id]
        assert same["stripe"] == answer.json()["stripe"]
        block: dict[str, Any] = answer.json()["stripe"]
        return block

    assert stripe_block("operator", "a-checkout")["client_secret"].startswith(job.public["stripe"]["payment_intent"])
    for role, sub in (("viewer", "a-viewer"), ("admin", "a-admin"), ("operator", "a-other-operator")):
        block = stripe_block(role, sub)
        assert "client_secret" not in block and block["payment_intent"]
    # The same subject name under another merchant is another principal: not found at all.
    assert api.get(f"/v1/jobs/{job.id}", headers=_headers(c, B, "operator", "a-checkout")).status_code == 404


def test_one_customer_id_under_two_merchants_is_two_stripe_customers(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    customer = _customer()
    first_a = _pay(api, c, A, customer)
    second_a = _pay(api, c, A, customer)
    at_b = _pay(api, c, B, customer)
    assert {first_a.status, second_a.status, at_b.status} == {"succeeded"}

    def stripe_customer(job: Job) -> str:
        intent = c.stripe.client.v1.payment_intents.retrieve(job.public["stripe"]["payment_intent"])
        return str(intent.customer)

    assert stripe_customer(first_a) == stripe_customer(second_a)
    assert stripe_customer(first_a) != stripe_customer(at_b)
    theirs = c.stripe.client.v1.customers.retrieve(stripe_customer(at_b))
    assert theirs.metadata.to_dict() == {"customer_id": customer, "merchant": B}


def test_one_idempotency_key_of_one_subject_under_two_merchants_makes_two_jobs(payment_container, api) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    key = uuid.uuid4().hex
    body = _payment(_customer())
    at_a = api.post("/v1/payments", json=body, headers=_headers(c, A, "operator", "erp", key))
    at_b = api.post("/v1/payments", json=body, headers=_headers(c, B, "operator", "erp", key))
    assert at_a.status_code == at_b.status_code == 202
    assert at_a.json()["id"] != at_b.json()["id"]
    replay = api.post("/v1/payments", json=body, headers=_headers(c, B, "operator", "erp", key))
    assert replay.json()["id"] == at_b.json()["id"] and replay.headers["Idempotent-Replayed"] == "true"
    batch = {"items": [{"idempotency_key": key, "payment": body}]}
    batch_b = api.post("/v1/payments/batch", json=batch, headers=_headers(c, B, "operator", "erp"))
    assert batch_b.status_code == 207
    [item] = batch_b.json()["data"]
    assert item["job"]["id"] == at_b.json()["id"]  # the merchant's own key: its own job, never A's


def test_reviews_and_subscriptions_of_another_merchant_are_404(payment_container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    parked = _pay(api, c, A, _customer(), amount=900_000)
    assert parked.status == "in_review"
    assert parked.id in [j.id for j in in_review(c, merchant=A)]  # what `payments review ls --merchant` lists
    assert parked.id not in [j.id for j in in_review(c, merchant=B)]
    assert parked.id in [j.id for j in in_review(c)]  # the CLI on call: every merchant's
    decision = {"decision": "decline"}
    foreign = api.post(f"/v1/jobs/{parked.id}/review", json=decision, headers=_headers(c, B, "admin", "b-admin"))
    assert foreign.status_code == 404, foreign.json()
    assert load(c, parked.id).status == "in_review"
    own = api.post(f"/v1/jobs/{parked.id}/review", json=decision, headers=_headers(c, A, "admin", "a-admin"))
    assert own.status_code == 200, own.json()

    who = {"id": _customer(), "email": "anna@example.ie", "country": "IE"}
    sub = {"customer": who, "plan": "basic-monthly", "payment_method": "pm_card_visa"}
    created = api.post("/v1/subscriptions", json=sub, headers=_headers(c, A, "operator", "a-op"))
    assert created.status_code == 202, created.json()
    sub_id = created.json()["subscription"]["id"]
    assert api.get(f"/v1/subscriptions/{sub_id}", headers=_headers(c, A, "viewer", "v")).status_code == 200
    assert api.get(f"/v1/subscriptions/{sub_id}", headers=_headers(c, B, "viewer", "v")).status_code == 404
    cancel = api.post(f"/v1/subscriptions/{sub_id}/cancel", json={}, headers=_headers(c, B, "operator", "b-op"))
    assert cancel.status_code == 404


def test_audit_records_carry_the_merchant(payment_container, api) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    answer = api.post("/v1/payments", json=_payment(_customer()), headers=_headers(c, B, "operator", "b-erp"))
    assert answer.status_code == 202
    seal(c.db)
    with c.db.connect() as conn:
        body = conn.execute(
            sa.select(audit_records.c.body).where(
                audit_records.c.job_id == answer.json()["id"], audit_records.c.action == "job.create"
            )
        ).scalar_one()
    record = json.loads(body)
    assert record["actor"] == "b-erp" and record["detail"]["merchant"] == B


def test_only_the_platform_merchant_asks_for_reports(payment_container, api) -> None:  # type: ignore[no-untyped-def]
    # A report reads the whole ledger, every merchant's sales: another merchant may not ask for one.
    c = payment_container
    body = {"type": "oss_return", "period": "2024-Q2"}
    refused = api.post("/v1/reports", json=body, headers=_headers(c, A, "admin", "a-admin"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert "merchant" in refused.json()["error"]["message"]
    platform = api.post("/v1/reports", json=body, headers=_headers(c, "default", "viewer", "finance"))
    assert platform.status_code == 202, platform.json()
