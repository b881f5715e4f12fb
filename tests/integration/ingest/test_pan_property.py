"""The PAN property test over HTTP (issue 14): a card number in any spelling (tests/pan_strategies.py), in any field
of a payment, in the X-Request-ID or Idempotency-Key header, or in any cell of a settlement CSV, is never accepted,
stored, queued, logged or echoed.  (Queued straight onto SQS: tests/integration/dlq/test_pan_guard.py; in-process
properties: tests/unit/domain/test_pan_property.py.)"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.adapters.s3 import settlements_bucket
from engine.db.tables import jobs
from tests.pan_strategies import digits_of, disguised, header_safe

pytestmark = pytest.mark.integration

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIELDS = ("description", "customer.id", "customer.email", "metadata.note", "metadata.<key>")


def _payment(text: str, field: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"id": "cus_prop", "email": "prop@example.ie", "country": "IE", "type": "consumer"},
        "amount": 1000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "metadata": {"order": "A-1"},
    }
    if field == "metadata.<key>":
        body["metadata"][text] = "x"
    elif "." in field:
        group, name = field.split(".")
        body[group][name] = text
    else:
        body[field] = text
    return body


def _stored(container: Any) -> tuple[int, str]:
    """How many jobs there are, and the digits of every stored request, result, correlation id and scope."""
    with container.db.connect() as conn:
        rows = conn.execute(
            sa.select(
                sa.cast(jobs.c.request, sa.Text),
                sa.cast(jobs.c.result, sa.Text),
                jobs.c.correlation_id,
                jobs.c.idempotency_scope,
            )
        ).all()
    return len(rows), digits_of(" | ".join(" ".join(str(v) for v in row) for row in rows))


def _queued(container: Any, queue: str) -> list[dict[str, Any]]:
    url = container.sqs.get_queue_url(QueueName=container.settings.queue_prefix + queue)["QueueUrl"]
    out = container.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0)
    return list(out.get("Messages", []))


@PROPERTY
@given(card=disguised(), field=st.sampled_from(FIELDS))
def test_a_payment_holding_one_anywhere_is_refused_and_leaves_no_trace(api, auth, container, caplog, card, field):  # type: ignore[no-untyped-def]
    pan, text = card
    caplog.set_level(logging.INFO)
    before = _stored(container)[0]
    answer = api.post("/v1/payments", json=_payment(text, field), headers=auth(key=f"k-{uuid.uuid4().hex}"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "pan_detected"
    assert pan not in digits_of(answer.text)
    count, digits = _stored(container)
    assert count == before and pan not in digits
    assert _queued(container, "payments.fifo") == []
    assert pan not in digits_of(caplog.text)


@PROPERTY
@given(card=header_safe(), header=st.sampled_from(("X-Request-ID", "Idempotency-Key")))
def test_a_header_holding_one_is_refused_and_never_echoed_or_stored(api, auth, container, caplog, card, header):  # type: ignore[no-untyped-def]
    pan, text = card
    caplog.set_level(logging.INFO)
    before = _stored(container)[0]
    headers = auth(key=f"k-{uuid.uuid4().hex}") | {header: text}
    answer = api.post("/v1/payments", json=_payment("plain", "description"), headers=headers)
    assert 400 <= answer.status_code < 500, answer.text
    assert pan not in digits_of(answer.text) and pan not in digits_of(str(dict(answer.headers)))
    count, digits = _stored(container)
    assert count == before and pan not in digits
    assert _queued(container, "payments.fifo") == []
    assert pan not in digits_of(caplog.text)


@PROPERTY
@given(
    card=disguised().filter(lambda c: "," not in c[1] and "\n" not in c[1] and '"' not in c[1]),
    column=st.sampled_from((1, 7, 8)),  # transaction_id, auth_code, original_transaction_id
)
def test_a_settlement_csv_holding_one_in_any_cell_is_refused_before_anything_is_stored(  # type: ignore[no-untyped-def]
    api, auth, container, caplog, card, column
):
    pan, text = card
    caplog.set_level(logging.INFO)
    header = "terminal_id,transaction_id,timestamp,type,amount,currency,card_last4,auth_code,original_transaction_id"
    row = ["T-prop", "S1", "2026-11-26T10:00:00+00:00", "sale", "100", "eur", "1111", "A1", ""]
    row[column] = text
    body = f"{header}\n{','.join(row)}\n".encode()
    bucket = settlements_bucket(container.settings)
    objects = container.s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
    before = _stored(container)[0]
    headers = auth(key=f"k-{uuid.uuid4().hex}") | {"Content-Type": "text/csv"}
    answer = api.post("/v1/settlements", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "pan_detected" and pan not in digits_of(answer.text)
    assert container.s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == objects
    assert _stored(container)[0] == before
    assert _queued(container, "settlements.fifo") == []
    assert pan not in digits_of(caplog.text)
