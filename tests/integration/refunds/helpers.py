"""Helpers shared by the refund and webhook integration tests: jobs through the real pipelines, queues read back."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
import stripe

from engine.broker.envelope import Envelope
from engine.db import jobs as job_repo
from engine.db.tables import ledger_entries, ledger_transactions
from engine.db.tables_refunds import refunds
from engine.jobs.job import Job
from engine.runtime.container import Container
from sandbox.stripe_sim.webhooks import signature_header


def payment_envelope(country: str = "IE", amount: int = 1000, **overrides: Any) -> dict[str, Any]:
    customer = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "anna@example.ie", "country": country}
    data = {"customer": customer, "amount": amount, "currency": "eur", "payment_method": "pm_card_visa", **overrides}
    return Envelope.new(
        kind="payment", data=data, idempotency_scope=f"test:{uuid.uuid4()}", group_id=customer["id"]
    ).to_arg()


def refund_envelope(payment: Job, amount: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"payment": payment.id}
    if amount is not None:
        data["amount"] = amount
    return Envelope.new(
        kind="refund", data=data, idempotency_scope=f"test:{uuid.uuid4()}", group_id=payment.customer_id
    ).to_arg()


def load(container: Container, job_id: str) -> Job:
    with container.db.connect() as conn:
        return job_repo.get(conn, job_id)


def queued(container: Container, queue: str, wait: float = 0) -> list[dict[str, Any]]:
    """Receive (and delete) every message on ``queue`` (base name), as envelope dicts."""
    sqs = container.sqs
    url = sqs.get_queue_url(QueueName=f"{container.settings.queue_prefix}{queue}.fifo")["QueueUrl"]
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for m in got.get("Messages", []):
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if not got.get("Messages") and (found or time.monotonic() >= deadline):
            return found
        if not got.get("Messages"):
            time.sleep(0.2)


def entries_of(container: Container, job_ids: list[str]) -> list[tuple[str, int]]:
    with container.db.connect() as conn:
        return [
            (r[0], int(r[1]))
            for r in conn.execute(
                sa.select(ledger_entries.c.account, ledger_entries.c.amount)
                .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
                .where(ledger_transactions.c.job_id.in_(job_ids))
            ).all()
        ]


def refund_rows(container: Container, payment_id: str) -> list[dict[str, Any]]:
    with container.db.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.select(refunds).where(refunds.c.payment_job_id == payment_id).order_by(refunds.c.created_at)
            ).mappings()
        ]


def sim_refunds(stripe_sim: Any, payment_intent: str) -> list[dict[str, Any]]:
    data = httpx.get(f"{stripe_sim.base_url}/_sim/refunds").json()["data"]
    return [r for r in data if r["payment_intent"] == payment_intent]


def stripe_client(stripe_sim: Any) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_payments_tests", base_addresses={"api": stripe_sim.base_url})


def sim_events(stripe_sim: Any, event_type: str) -> list[dict[str, Any]]:
    """The sandbox's events of a type, oldest first, as the JSON Stripe would deliver."""
    data = httpx.get(f"{stripe_sim.base_url}/_sim/events").json()["data"]
    return [e for e in data if e["type"] == event_type]


def signed(event: dict[str, Any], secret: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event)
    return body.encode(), {
        "Stripe-Signature": signature_header(body, secret, timestamp),
        "Content-Type": "application/json",
    }
