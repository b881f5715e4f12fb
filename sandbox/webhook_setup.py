"""Registering `payments run`'s ingest with the bundled Stripe sandbox (the sandbox's webhook endpoint and secret).

Against real Stripe the endpoint is registered in the dashboard and its secret configured; `payments run` registers
with the sandbox only.
"""

from __future__ import annotations

from typing import Any

import stripe

from config.settings import Settings
from engine.adapters.stripe_webhooks import ENABLED_EVENTS, WEBHOOK_PATH, secret_path
from engine.runtime.endpoints import SANDBOX_API_KEY
from engine.runtime.private_files import write_private


def register_with_sandbox(settings: Settings, stripe_api_base: str, ingest_url: str) -> str:
    """Make sure the sandbox at ``stripe_api_base`` delivers the engine's events to ``{ingest_url}/webhooks/stripe``
    and return the signing secret, kept (mode 0600) in :func:`secret_path`.

    Idempotent across restarts of a persistent sandbox: an endpoint for the URL whose secret is on file is kept;
    otherwise stale endpoints for the URL are deleted and a new one is created.  Raises :class:`stripe.StripeError`
    when the sandbox refuses.
    """
    client = stripe.StripeClient(SANDBOX_API_KEY, base_addresses={"api": stripe_api_base}, max_network_retries=2)
    url = ingest_url.rstrip("/") + WEBHOOK_PATH
    path = secret_path(settings)
    existing = [e for e in client.v1.webhook_endpoints.list(params={"limit": 100}).data if e.url == url]
    on_file = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if existing and on_file:
        return on_file
    for endpoint in existing:
        client.v1.webhook_endpoints.delete(endpoint.id)
    params: dict[str, Any] = {"url": url, "enabled_events": list(ENABLED_EVENTS), "description": "payments-engine"}
    created = client.v1.webhook_endpoints.create(params=params)  # type: ignore[arg-type]
    secret = str(created.secret)
    write_private(path, secret + "\n")
    return secret
