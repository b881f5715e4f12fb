"""POST /v1/payments: auth and roles, idempotency, validation, the PAN guard, durability before 202."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

PAYMENT: dict[str, Any] = {
    "customer": {"id": "cus_api_1", "email": "anna@example.ie", "country": "IE", "type": "consumer"},
    "amount": 1000,
    "currency": "EUR",
    "payment_method": "pm_card_visa",
    "metadata": {"order": "A-1"},
}


def _key() -> str:
    return f"key-{uuid.uuid4().hex}"


def _queue_messages(container, base: str = "payments.fifo") -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    url = container.sqs.get_queue_url(QueueName=container.settings.queue_prefix + base)["QueueUrl"]
    out = container.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0)
    return list(out.get("Messages", []))


def test_accepted_payment_is_durable_and_enqueued(api, auth, container) -> None:  # type: ignore[no-untyped-def]
    response = api.post("/v1/payments", json=PAYMENT, headers=auth(key=_key()))
    assert response.status_code == 202, response.json()
    job = response.json()
    assert job["object"] == "job" and job["kind"] == "payment" and job["status"] == "accepted"
    assert job["stage"] is None and job["id"].startswith("job_")
    assert job["currency"] == "eur" and job["amount"] == 1000
    assert job["created_at"].endswith("Z")
    messages = _queue_messages(container)
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["job_id"] == job["id"] and body["kind"] == "payment" and body["group_id"] == "cus_api_1"
    assert body["data"]["currency"] == "eur"
    fetched = api.get(f"/v1/jobs/{job['id']}", headers=auth("viewer", key=None))
    assert fetched.status_code == 200 and fetched.json()["id"] == job["id"]


def test_idempotency_replay_conflict_and_scope_per_client(api, auth, container) -> None:  # type: ignore[no-untyped-def]
    key = _key()
    first = api.post("/v1/payments", json=PAYMENT, headers=auth(key=key))
    # Same key, same body (other formatting and key order): the first answer again, no second job.
    reordered = json.dumps(dict(reversed(list(PAYMENT.items()))), indent=2)
    again = api.post("/v1/payments", content=reordered, headers={**auth(key=key), "Content-Type": "application/json"})
    assert again.status_code == 202 and again.json() == first.json()
    other = copy.deepcopy(PAYMENT)
    other["amount"] = 2000
    conflict = api.post("/v1/payments", json=other, headers=auth(key=key))
    assert conflict.status_code == 422
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"
    # Another client may use the same key for its own job.
    mine = api.post("/v1/payments", json=PAYMENT, headers=auth(key=key, sub="another-client"))
    assert mine.status_code == 202 and mine.json()["id"] != first.json()["id"]
    assert len(_queue_messages(container)) == 2


def test_in_flight_key_is_409(api, auth, container) -> None:  # type: ignore[no-untyped-def]
    from engine.ingest.idempotency import IdempotencyStore

    key = _key()
    store = IdempotencyStore(container.db, container.redis, container.redis_prefix, 60)
    assert store.acquire("upstream-test", key)  # a first request still running
    try:
        response = api.post("/v1/payments", json=PAYMENT, headers=auth(key=key))
    finally:
        store.release("upstream-test", key)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"


@pytest.mark.parametrize(
    ("headers_for", "status", "code"),
    [
        (lambda auth: {}, 401, "unauthenticated"),
        (lambda auth: {"Authorization": "Bearer nope"}, 401, "unauthenticated"),
        (lambda auth: auth("viewer"), 403, "forbidden"),
        (lambda auth: auth("support"), 403, "forbidden"),
        (lambda auth: auth("operator", key=None), 400, "idempotency_key_missing"),
        (lambda auth: auth("admin", key="x" * 256), 400, "idempotency_key_invalid"),
        (lambda auth: auth("admin", key="two words"), 400, "idempotency_key_invalid"),
        (lambda auth: auth("admin", key="4111-1111-1111-1111"), 400, "pan_detected"),
    ],
)
def test_checks_run_in_the_documented_order(api, auth, headers_for, status, code) -> None:  # type: ignore[no-untyped-def]
    # The body is invalid too: auth and key checks must win over validation.
    response = api.post("/v1/payments", json={"amount": "lots"}, headers=headers_for(auth))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("change", "param"),
    [
        (lambda p: p.update(amount=10.5), "amount"),
        (lambda p: p.update(amount="1000"), "amount"),
        (lambda p: p.update(currency="XXX"), "currency"),
        (lambda p: p["customer"].pop("email"), "customer.email"),
        (lambda p: p["customer"].update(country="Ireland"), "customer.country"),
        (lambda p: p["customer"].update(country="ZZ"), "customer.country"),  # issue 14 item 12: ISO 3166 only
        (lambda p: p["customer"].update(country="UK"), "customer.country"),
        (lambda p: p.update(tax_behavior="sometimes"), "tax_behavior"),
        (lambda p: p.update(unexpected=True), "unexpected"),
        (lambda p: p.update(amount=49), "amount"),
        (lambda p: p.update(currency="kwd", amount=1235), "amount"),
        (lambda p: p.update(metadata={"job_id": "mine"}), "metadata"),
        (lambda p: p["customer"].update(vat_id="DE136695976", type="business"), "customer.vat_id"),
    ],
)
def test_validation_errors_name_the_field(api, auth, container, change, param) -> None:  # type: ignore[no-untyped-def]
    body = copy.deepcopy(PAYMENT)
    change(body)
    response = api.post("/v1/payments", json=body, headers=auth(key=_key()))
    assert response.status_code == 422, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["param"] == param
    assert _queue_messages(container) == []


@pytest.mark.parametrize(
    "pan",
    ["4242424242424242", "4242 4242 4242 4242", "4000-0566-5566-5556", "378282246310005",
     # issue 14 item 1: the spellings that used to pass
     "4111.1111.1111.1111", "4111  1111  1111  1111", "4111\t1111\t1111\t1111", "4111/1111/1111/1111",
     "4111 - 1111 - 1111 - 1111", "4111\u00a01111\u00a01111\u00a01111", "4111\u200b1111\u200b1111\u200b1111",
     "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11"],
)  # fmt: skip
def test_card_numbers_are_refused_and_never_echoed(api, auth, container, caplog, pan) -> None:  # type: ignore[no-untyped-def]
    body = copy.deepcopy(PAYMENT)
    body["metadata"] = {"note": f"card {pan} thanks"}
    response = api.post("/v1/payments", json=body, headers=auth(key=_key()))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "pan_detected"
    assert response.json()["error"]["param"] == "metadata.note"
    assert pan not in response.text
    assert pan not in caplog.text
    assert _queue_messages(container) == []


def test_jobs_list_filters_and_paginates(api, auth) -> None:  # type: ignore[no-untyped-def]
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    body = copy.deepcopy(PAYMENT)
    body["customer"]["id"] = customer
    ids = [api.post("/v1/payments", json=body, headers=auth(key=_key())).json()["id"] for _ in range(3)]
    page = api.get("/v1/jobs", params={"customer": customer, "limit": 2}, headers=auth("support", key=None)).json()
    assert page["object"] == "list" and len(page["data"]) == 2 and page["has_more"] is True
    rest = api.get(
        "/v1/jobs",
        params={"customer": customer, "limit": 2, "cursor": page["next_cursor"]},
        headers=auth("viewer", key=None),
    ).json()
    assert rest["has_more"] is False and rest["next_cursor"] is None
    assert [j["id"] for j in page["data"] + rest["data"]] == list(reversed(ids))
    assert api.get("/v1/jobs/job_missing", headers=auth("viewer", key=None)).json()["error"]["code"] == "not_found"


def test_jobs_list_pages_stripe_style(api, auth) -> None:  # type: ignore[no-untyped-def]
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    body = copy.deepcopy(PAYMENT)
    body["customer"]["id"] = customer
    ids = [api.post("/v1/payments", json=body, headers=auth(key=_key())).json()["id"] for _ in range(5)]
    newest_first = list(reversed(ids))
    viewer = auth("viewer", key=None)

    def listed(**params: Any) -> dict[str, Any]:
        answer = api.get("/v1/jobs", params={"customer": customer, "limit": 2, **params}, headers=viewer)
        assert answer.status_code == 200, answer.json()
        return dict(answer.json())

    first = listed()
    assert [j["id"] for j in first["data"]] == newest_first[:2] and first["has_more"] is True
    second = listed(starting_after=first["data"][-1]["id"])
    assert [j["id"] for j in second["data"]] == newest_first[2:4] and second["has_more"] is True
    last = listed(starting_after=second["data"][-1]["id"])
    assert [j["id"] for j in last["data"]] == newest_first[4:] and last["has_more"] is False
    # Back again: the page just newer than the last page's first job, still newest first.
    back = listed(ending_before=last["data"][0]["id"])
    assert [j["id"] for j in back["data"]] == newest_first[2:4] and back["has_more"] is True
    top = listed(ending_before=newest_first[1])
    assert [j["id"] for j in top["data"]] == newest_first[:1] and top["has_more"] is False
    missing = api.get("/v1/jobs", params={"starting_after": "job_missing"}, headers=viewer)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "starting_after"
    both = api.get("/v1/jobs", params={"starting_after": ids[0], "ending_before": ids[1]}, headers=viewer)
    assert both.status_code == 422 and both.json()["error"]["code"] == "validation_error"
