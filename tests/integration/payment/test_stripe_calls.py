"""Needless Stripe calls (issue 17 item 1): a customer is created on Stripe once, whatever the number of its
payments or of worker processes; a payment reads its fee from the expanded create-and-confirm, not with a GET of its
own.  The sandbox counts requests per endpoint (``GET /_sim/stats``, ``by_endpoint``)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from engine.broker.envelope import Envelope
from engine.db.tables import ledger_entries, ledger_transactions
from engine.runtime.container import Container

pytestmark = pytest.mark.integration


def _by_endpoint(stripe_sim: Any) -> dict[str, int]:
    return dict(httpx.get(f"{stripe_sim.base_url}/_sim/stats").json()["by_endpoint"])


def _payment(customer: dict[str, str]) -> dict[str, Any]:
    data = {"customer": customer, "amount": 1000, "currency": "eur", "payment_method": "pm_card_visa"}
    return Envelope.new(
        kind="payment", data=data, idempotency_scope=f"test:{uuid.uuid4()}", group_id=customer["id"]
    ).to_arg()


def _fee_booked(c: Container, job_id: str) -> int:
    with c.db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(ledger_entries.c.amount), 0))
                .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
                .where(ledger_transactions.c.job_id == job_id, ledger_entries.c.account == "fees")
            ).scalar_one()
        )


def test_a_customer_is_created_on_stripe_once_across_payments_and_processes(
    payment_container: Container, payment_settings: Any, stripe_sim: Any
) -> None:
    customer = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "anna@example.ie", "country": "IE", "type": "consumer"}
    for _ in range(3):
        assert payment_container.run_job("payment", _payment(customer)).status == "succeeded"
    # Another worker process: a gateway of its own, nothing remembered in memory; the mapping is in Redis.
    other = Container(settings=payment_settings, endpoints=payment_container.endpoints)
    assert other.run_job("payment", _payment(customer)).status == "succeeded"
    calls = _by_endpoint(stripe_sim)
    assert calls.get("POST /v1/customers") == 1, calls
    assert calls.get("POST /v1/payment_intents") == 4, calls


def test_a_payment_books_its_fee_from_the_expanded_confirm_without_a_get(
    payment_container: Container, stripe_sim: Any
) -> None:
    customer = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "anna@example.ie", "country": "IE", "type": "consumer"}
    done = payment_container.run_job("payment", _payment(customer))
    assert done.status == "succeeded"
    assert _fee_booked(payment_container, done.id) > 0  # the sandbox's fee, booked
    calls = _by_endpoint(stripe_sim)
    assert "GET /v1/charges/{id}" not in calls and "GET /v1/payment_intents/{id}" not in calls, calls


def test_a_key_first_used_without_expand_gets_its_saved_answer(payment_container: Container, stripe_sim: Any) -> None:
    """A charge an engine of before the expansion sent (no ``expand``) and this one repeats under the same key: the
    gateway repeats the first request exactly, so Stripe replays its answer instead of an idempotency error."""
    gw = payment_container.stripe
    params: dict[str, Any] = {
        "amount": 1230,
        "currency": "eur",
        "customer": gw.customer_for("job_x", f"cus_{uuid.uuid4().hex[:10]}", None),
        "payment_method": "pm_card_visa",
        "confirm": True,
        "payment_method_types": ["card"],
        "metadata": {"job_id": "job_old"},
    }
    key = f"job_old:{uuid.uuid4().hex}:charge:g0"
    first = gw.client.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    again = gw.create_and_confirm(
        "job_old",
        amount=1230,
        currency="eur",
        customer=params["customer"],
        payment_method="pm_card_visa",
        idempotency_key=key,
    )
    assert again.id == first.id and again.status == "succeeded"
