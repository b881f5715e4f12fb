"""Issue 7 as a user meets it: `payments run`, payments whose Stripe calls keep failing with HTTP 500 reach the
DLQ with reasons, `payments dlq ls` lists them, and after the cause is fixed `payments dlq replay --all` completes
them with exactly one charge each."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, wait_for

pytestmark = pytest.mark.xdist_group("e2e")

FAILING = "pm_card_mastercard"


def _sandbox(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['PAYMENTS_STRIPE_SIM_PORT']}"


def _pay(stack: Stack, headers: dict[str, str], method: str) -> str:
    body = {
        "customer": {"id": f"cus_{uuid.uuid4().hex[:8]}", "email": "dlq@example.ie", "country": "IE"},
        "amount": 1500,
        "currency": "EUR",
        "payment_method": method,
    }
    answer = httpx.post(
        f"{stack.ingest_url}/v1/payments",
        json=body,
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _status(stack: Stack, headers: dict[str, str], job_id: str) -> str:
    return str(httpx.get(f"{stack.ingest_url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()["status"])


def _charges(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    data = httpx.get(f"{_sandbox(stack)}/_sim/payment_intents", params={"job_id": job_id}, timeout=10).json()["data"]
    return [pi for pi in data if pi["status"] == "succeeded" and pi["metadata"].get("job_id") == job_id]


def test_dead_letters_are_listed_and_replayed_with_exactly_one_charge_each(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {stack.token('operator')}"}
    config = {"fail_payment_methods": [FAILING]}
    assert httpx.post(f"{_sandbox(stack)}/_sim/config", json=config, timeout=10).status_code == 200
    try:
        failing = [_pay(stack, headers, FAILING) for _ in range(2)]
        good = [_pay(stack, headers, "pm_card_visa") for _ in range(2)]
        wait_for(lambda: all(_status(stack, headers, j) == "dead_lettered" for j in failing), timeout=60)
        wait_for(lambda: all(_status(stack, headers, j) == "succeeded" for j in good), timeout=30)
        listed = wait_for(lambda: (rows := stack.json("dlq", "ls", "--json")) and len(rows) == 2 and rows, timeout=30)
    finally:
        httpx.post(f"{_sandbox(stack)}/_sim/config", json={"fail_payment_methods": []}, timeout=10)
    assert sorted(r["job_id"] for r in listed) == sorted(failing)
    assert all(r["error"]["class"] == "TransientError" and r["attempts"] == 3 for r in listed)
    assert all(r["queue"] == "payments.fifo" and r["stage"] == "charge" for r in listed)

    replayed = stack.json("dlq", "replay", "--all", "--json")
    assert sorted(r["job_id"] for r in replayed) == sorted(failing)
    assert {r["outcome"] for r in replayed} == {"replayed"}
    wait_for(lambda: all(_status(stack, headers, j) == "succeeded" for j in failing), timeout=60)
    for job_id in failing + good:
        assert len(_charges(stack, job_id)) == 1, job_id
    assert stack.json("dlq", "ls", "--json") == []
    report = stack.json("scheduler", "--once", "--json")
    assert report["reconciler"].startswith("0 job(s) without progress")
