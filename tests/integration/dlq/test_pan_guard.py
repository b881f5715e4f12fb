"""Issue 14 item 3, through a real worker: messages an upstream system puts straight on SQS are scanned for card
numbers before anything is stored or sent.  A hit is dead-lettered with its body redacted: no job row, nothing
sent to Stripe, no PAN in ``dead_letters``, in the DLQ message, in ``payments dlq show`` nor in the logs; a clean
message beside it is charged as usual."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import dramatiq
import httpx
import pytest
import sqlalchemy as sa

from engine.db.tables import dead_letters, jobs
from engine.runtime.container import Container
from tests.integration.dlq.conftest import cli_json, depth, queue_url, wait_until

PAN = "4111111111111111"


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _upstream(c: Container, data: dict[str, Any], *, group: str, job_id: str | None = None) -> str:
    """Send an envelope straight to payments.fifo as an upstream system does; return its message id."""
    message_id = str(uuid.uuid4())
    envelope: dict[str, Any] = {
        "version": 1,
        "message_id": message_id,
        "kind": "payment",
        "idempotency_scope": f"upstream:{message_id}",
        "group_id": group,
        "created_at": "2026-11-26T10:00:00+00:00",
        "data": data,
    }
    if job_id:
        envelope["job_id"] = job_id
    c.sqs.send_message(
        QueueUrl=queue_url(c, "payments.fifo"),
        MessageBody=json.dumps(envelope),
        MessageGroupId=group,
        MessageDeduplicationId=message_id,
    )
    return message_id


def _payment(customer: str, **extra: Any) -> dict[str, Any]:
    return {
        "customer": {"id": customer, "email": "pan-guard@example.ie", "country": "IE", "type": "consumer"},
        "amount": 1000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        **extra,
    }


@pytest.mark.parametrize(
    "spelling",
    [PAN, "4111.1111\u00a01111\u200b1111", "\uff14\uff11\uff11\uff11 1111 1111 1111"],
)
def test_an_upstream_message_with_a_card_number_is_dead_lettered_redacted_and_never_charged(
    payment_container: Container,
    stripe_sim: Any,
    start_worker: Callable[[], dramatiq.Worker],
    payments_cli: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    spelling: str,
) -> None:
    c = payment_container
    caplog.set_level(logging.INFO)
    tag = uuid.uuid4().hex[:10]
    bad_job = f"job_pan_{tag}"
    bad = _upstream(
        c,
        _payment(f"cus_bad{tag}", metadata={"note": f"card {spelling}"}, description="upstream order"),
        group=f"cus_bad{tag}",
        job_id=bad_job,
    )
    clean_customer = f"cus_ok{tag}"
    _upstream(c, _payment(clean_customer, metadata={"order": f"ORD-{tag}"}), group=clean_customer)
    start_worker()

    wait_until(lambda: depth(c, "payments-dlq.fifo") == 1 and depth(c, "payments.fifo") == 0, timeout=30)
    with c.db.connect() as conn:
        wait_until(lambda: conn.execute(sa.select(jobs.c.status).where(jobs.c.customer_id == clean_customer)).all())
    with c.db.connect() as conn:
        clean_status = wait_until(
            lambda: conn.execute(
                sa.select(jobs.c.status).where(jobs.c.customer_id == clean_customer, jobs.c.status == "succeeded")
            ).scalar()
        )
        assert clean_status == "succeeded"
        # No job row for the message with the card number: nothing was stored.
        assert conn.execute(sa.select(jobs.c.id).where(jobs.c.id == bad_job)).all() == []
        (row,) = conn.execute(sa.select(dead_letters).where(dead_letters.c.job_id == bad_job)).mappings().all()
    assert row["source"] == "poison" and row["error_class"] == "PoisonMessage"
    assert row["error_message"].startswith("pan_detected") and "metadata.note" in row["error_message"]
    assert json.loads(row["body"])["redacted"] == "pan_detected" and json.loads(row["body"])["message_id"] == bad
    everything = json.dumps({k: str(v) for k, v in row.items()})
    assert PAN not in _digits(everything) and "data" not in json.loads(row["body"])

    # Nothing reached Stripe: no PaymentIntent of the sandbox carries the number or the bad job.
    intents = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents").json()["data"]
    assert PAN not in _digits(json.dumps(intents))
    assert not [pi for pi in intents if (pi.get("metadata") or {}).get("job_id") == bad_job]

    shown = payments_cli("dlq", "show", bad_job, "--json")
    assert PAN not in _digits(shown.stdout) and json.loads(shown.stdout)["messages"][0]["body"]
    listed = cli_json(payments_cli, "dlq", "ls", "--json")
    assert PAN not in _digits(json.dumps(listed))
    assert PAN not in _digits(caplog.text)


def test_a_card_number_as_message_group_id_or_non_json_body_is_redacted(
    payment_container: Container, start_worker: Callable[[], dramatiq.Worker], caplog: pytest.LogCaptureFixture
) -> None:
    c = payment_container
    caplog.set_level(logging.INFO)
    url = queue_url(c, "payments.fifo")
    c.sqs.send_message(QueueUrl=url, MessageBody=f"card={PAN}", MessageGroupId="g1", MessageDeduplicationId="d1")
    c.sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"version": 1, "kind": "payment", "data": {}}),
        MessageGroupId="4111-1111-1111-1111",
        MessageDeduplicationId="d2",
    )
    start_worker()
    wait_until(lambda: depth(c, "payments-dlq.fifo") == 2 and depth(c, "payments.fifo") == 0, timeout=30)
    mine = dead_letters.c.queue == f"{c.settings.queue_prefix}payments.fifo"
    with c.db.connect() as conn:
        rows = conn.execute(sa.select(dead_letters).where(mine)).mappings().all()
    assert len(rows) == 2
    for row in rows:
        assert row["error_message"].startswith("pan_detected")
        assert PAN not in _digits(json.dumps({k: str(v) for k, v in row.items()}))
    answer = c.sqs.receive_message(
        QueueUrl=queue_url(c, "payments-dlq.fifo"), MaxNumberOfMessages=10, AttributeNames=["All"]
    )
    dlq = answer.get("Messages", [])
    assert len(dlq) == 2
    assert PAN not in _digits(json.dumps(dlq))
    assert PAN not in _digits(caplog.text)
