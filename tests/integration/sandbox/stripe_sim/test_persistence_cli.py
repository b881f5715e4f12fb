"""The SQLite state file keeps objects and idempotent answers across restarts; the CLI serves and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import stripe

from sandbox.stripe_sim import StripeSandbox


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "stripe.sqlite"
    params = {
        "amount": 1500,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "metadata": {"job_id": "persist"},
    }
    with StripeSandbox(port=0, state_file=state) as first:
        client = stripe.StripeClient(api_key="sk_test_p", base_addresses={"api": first.base_url})
        intent = client.v1.payment_intents.create(params=params, options={"idempotency_key": "persist-1"})  # type: ignore[arg-type]
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    with StripeSandbox(port=0, state_file=state) as second:
        client = stripe.StripeClient(api_key="sk_test_p", base_addresses={"api": second.base_url})
        again = client.v1.payment_intents.retrieve(intent.id)
        assert again.status == "succeeded" and again.metadata["job_id"] == "persist"
        replay = client.v1.payment_intents.create(params=params, options={"idempotency_key": "persist-1"})  # type: ignore[arg-type]
        assert replay.id == intent.id
        assert len(httpx.get(f"{second.base_url}/_sim/payment_intents").json()["data"]) == 1
        # The refund made before the restart still counts against what can be refunded.
        refund = client.v1.refunds.create(params={"payment_intent": intent.id})
        assert refund.amount == 1000
        newer = client.v1.customers.create()
        listed = client.v1.customers.list()
        assert listed.data[0].id == newer.id


def test_in_memory_by_default() -> None:
    with StripeSandbox(port=0) as first:
        httpx.post(f"{first.base_url}/v1/customers", headers={"Authorization": "Bearer sk_test_m"})
    with StripeSandbox(port=0) as second:
        assert httpx.get(f"{second.base_url}/_sim/customers").json()["data"] == []


def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "sim", "stripe", "--port", "0", "--latency-ms", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        url = match.group(0)
        assert httpx.get(f"{url}/_sim/health").json() == {"ok": True, "down": False}
        assert httpx.get(f"{url}/_sim/config").json()["latency_ms"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_cli_reports_a_busy_port() -> None:
    with StripeSandbox(port=0) as busy:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", "sim", "stripe", "--port", str(busy.port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1 and "cannot listen" in result.stderr
