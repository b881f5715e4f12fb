"""`payments run` with no configuration: every part comes up, a payment goes through, Ctrl-C stops it all."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import Stack, wait_for

pytestmark = pytest.mark.xdist_group("e2e")

QUEUES = {
    "payments.fifo", "refunds.fifo", "subscriptions.fifo", "settlements.fifo", "webhooks.fifo", "reports.fifo",
    "notifications",
}  # fmt: skip


def test_queues_ls_lists_every_queue_with_its_dlq(stack: Stack) -> None:
    rows = stack.json("queues", "ls", "--json")
    assert {r["name"] for r in rows} == QUEUES
    for row in rows:
        expected_dlq = (
            row["name"].replace(".fifo", "-dlq.fifo") if row["name"].endswith(".fifo") else "notifications-dlq"
        )
        assert row["dlq"]["name"] == expected_dlq and row["dlq"]["visible"] is not None
        assert row["type"] == ("fifo" if row["name"].endswith(".fifo") else "standard")


def test_health_reports_every_part_on_the_internal_port_only(stack: Stack) -> None:
    assert httpx.get(f"{stack.ingest_url}/health", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{stack.ingest_url}/metrics", timeout=10).status_code == 404
    body = httpx.get(f"{stack.internal_url}/health", timeout=10).json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "queues", "redis", "workers", "stripe"}
    assert all(check["ok"] for check in body["checks"].values())


def test_config_shows_the_endpoints_in_use_with_secrets_masked(stack: Stack) -> None:
    config = stack.json("config", "--json")
    endpoints = config["endpoints"]
    assert endpoints["sqs_endpoint_url"].startswith("http://127.0.0.1:")
    assert endpoints["database_url"] and "postgresql" in endpoints["database_url"]
    assert endpoints["stripe_api_key"] == "**********"


def test_a_payment_goes_through_end_to_end(stack: Stack) -> None:
    token = stack.token("operator")
    body = {
        "customer": {"id": f"cus_{uuid.uuid4().hex[:8]}", "email": "e2e@example.fr", "country": "FR"},
        "amount": 2000,
        "currency": "EUR",
        "payment_method": "pm_card_visa",
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    accepted = httpx.post(f"{stack.ingest_url}/v1/payments", json=body, headers=headers, timeout=10)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]

    def done() -> dict | None:
        job = httpx.get(f"{stack.ingest_url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
        return job if job["status"] not in ("accepted", "processing") else None

    job = wait_for(done, timeout=60)
    assert job["status"] == "succeeded", job
    assert job["vat"] == {"country": "FR", "rate": "20", "scheme": "oss"}
    assert job["amounts"] == {"net": 2000, "vat": 400, "total": 2400, "currency": "eur"}
    verify = stack.payments("ledger", "verify")
    assert verify.returncode == 0


def test_commands_refuse_to_start_a_second_stack(stack: Stack) -> None:
    again = stack.payments("run", check=False, timeout=60)
    assert again.returncode == 1 and "already running" in again.stderr


def test_demo_sends_a_realistic_mix_and_every_job_settles(stack: Stack) -> None:
    import json

    result = stack.payments("demo", "--count", "40", "--json", timeout=180)
    summary = json.loads(result.stdout)
    assert summary["accepted"] == 40 and summary["refused"] == 0
    statuses = {row["status"] for row in summary["outcomes"]}
    assert {"succeeded", "failed"} <= statuses
    schemes = {row["scheme"] for row in summary["outcomes"] if row["status"] == "succeeded"}
    assert {"oss", "reverse_charge"} <= schemes
    assert stack.payments("ledger", "verify").returncode == 0


def test_correlation_id_reaches_ingest_and_worker_logs(stack: Stack) -> None:
    correlation = f"corr-{uuid.uuid4().hex[:12]}"
    headers = {
        "Authorization": f"Bearer {stack.token('operator')}",
        "Idempotency-Key": uuid.uuid4().hex,
        "X-Request-ID": correlation,
    }
    body = {
        "customer": {"id": f"cus_{uuid.uuid4().hex[:8]}", "email": "c@example.de", "country": "DE"},
        "amount": 1500,
        "currency": "eur",
        "payment_method": "pm_card_visa",
    }
    accepted = httpx.post(f"{stack.ingest_url}/v1/payments", json=body, headers=headers, timeout=10)
    assert accepted.status_code == 202 and accepted.headers["X-Request-ID"] == correlation
    job_id = accepted.json()["id"]

    def logged() -> list[dict]:
        import json

        lines = []
        for raw in stack.log().splitlines():
            if correlation in raw and raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue
        return lines if any("succeeded" in line.get("message", "") for line in lines) else []

    lines = wait_for(logged, timeout=60)
    assert any(line["message"].startswith("accepted payment job") for line in lines)
    assert all(line.get("correlation_id") == correlation for line in lines)
    assert any(line.get("job_id") == job_id and "succeeded" in line["message"] for line in lines)
