"""Body limits (issue: a 30 MB body to the unauthenticated webhook route raised the ingest's memory by 120 MB):
413 ``body_too_large`` naming the limit, declared or streamed, and nothing accepted."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.db.tables import jobs


def _payment(pad: int) -> dict[str, object]:
    return {
        "customer": {"id": "cus_big", "email": "big@example.ie", "country": "IE"},
        "amount": 1000,
        "currency": "EUR",
        "payment_method": "pm_card_visa",
        "description": "x" * pad,
    }


def _job_count(container) -> int:  # type: ignore[no-untyped-def]
    with container.db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one())


def test_a_json_body_above_one_mebibyte_is_refused_before_it_is_read(
    api: TestClient, auth: Callable[..., dict[str, str]], container
) -> None:  # type: ignore[no-untyped-def]
    before = _job_count(container)  # the database is shared by the tests of one xdist worker
    r = api.post("/v1/payments", json=_payment(2 * 1024 * 1024), headers=auth(key="big-1"))
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "body_too_large" and "PAYMENTS_HTTP_MAX_JSON_BYTES" in error["message"]
    assert _job_count(container) == before
    # The same client, a body of a normal size: accepted.
    assert api.post("/v1/payments", json=_payment(10), headers=auth(key="small-1")).status_code == 202


def test_a_streamed_body_without_content_length_is_cut_at_the_limit(
    api: TestClient, auth: Callable[..., dict[str, str]], container
) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(_payment(3 * 1024 * 1024)).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    headers = {**auth(key="chunked-1"), "Content-Type": "application/json"}
    before = _job_count(container)
    r = api.post("/v1/payments", content=chunks(), headers=headers)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "body_too_large"
    assert _job_count(container) == before


def test_the_unauthenticated_webhook_route_takes_at_most_64_kib(api: TestClient) -> None:
    event = {"id": "evt_big", "type": "charge.refunded", "data": {"object": {"padding": "y" * 100_000}}}
    r = api.post("/webhooks/stripe", json=event, headers={"Stripe-Signature": "t=1,v1=00"})
    assert r.status_code == 413
    assert "PAYMENTS_HTTP_MAX_WEBHOOK_BYTES" in r.json()["error"]["message"]


def test_a_settlement_upload_above_its_cap_is_refused(
    engine_settings, container, auth: Callable[..., dict[str, str]]
) -> None:  # type: ignore[no-untyped-def]
    from engine.ingest.app import create_app

    engine_settings.http.max_settlement_bytes = 4096
    api = TestClient(create_app(container))
    rows = "".join(f"T{i:08d},2027-03-01T10:00:00Z,sale,1000,EUR,\n" for i in range(400))
    csv = "transaction_id,timestamp,type,amount,currency,original_transaction_id\n" + rows
    before = _job_count(container)
    r = api.post("/v1/settlements", content=csv.encode(), headers={**auth(key="batch-big"), "Content-Type": "text/csv"})
    assert r.status_code == 413, r.text
    assert "PAYMENTS_HTTP_MAX_SETTLEMENT_BYTES" in r.json()["error"]["message"]
    assert _job_count(container) == before
