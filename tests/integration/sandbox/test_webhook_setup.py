"""`payments run`'s webhook registration with the sandbox: one endpoint, the secret kept under the data directory."""

from __future__ import annotations

from pathlib import Path

import httpx

from config.settings import Settings
from engine.adapters.stripe_webhooks import ENABLED_EVENTS, configured_secrets, secret_path
from sandbox.webhook_setup import register_with_sandbox


def test_registration_is_idempotent_and_keeps_the_secret(stripe_sim, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path)
    secret = register_with_sandbox(settings, stripe_sim.base_url, "http://127.0.0.1:8000")
    assert secret.startswith("whsec_") and secret_path(settings).read_text().strip() == secret
    assert oct(secret_path(settings).stat().st_mode & 0o777) == "0o600"
    assert register_with_sandbox(settings, stripe_sim.base_url, "http://127.0.0.1:8000") == secret
    endpoints = httpx.get(f"{stripe_sim.base_url}/_sim/webhook_endpoints").json()["data"]
    assert [(e["url"], sorted(e["enabled_events"])) for e in endpoints] == [
        ("http://127.0.0.1:8000/webhooks/stripe", sorted(ENABLED_EVENTS))
    ]
    assert secret in configured_secrets(settings)
    # A lost secret file means a new endpoint (the old secret cannot be read back from Stripe).
    secret_path(settings).unlink()
    renewed = register_with_sandbox(settings, stripe_sim.base_url, "http://127.0.0.1:8000")
    assert renewed != secret
    assert len(httpx.get(f"{stripe_sim.base_url}/_sim/webhook_endpoints").json()["data"]) == 1
