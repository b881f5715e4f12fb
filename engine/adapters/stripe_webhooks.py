"""Stripe webhook signing secrets: which secrets the ingest accepts, and the events the engine subscribes to.

The ingest accepts every secret of ``PAYMENTS_STRIPE_WEBHOOK_SECRETS`` (comma-separated: rotation keeps the old
and the new one for a while) plus, in sandbox mode only (no ``PAYMENTS_STRIPE_API_KEY``), the one `payments run`
keeps in ``{data_dir}/stripe-webhook-secret`` (mode 0600).  Against real Stripe the endpoint is registered in the
dashboard and its secret configured; `payments run` registers with the sandbox only (``docs/webhooks.md``,
"Registration").
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from config.settings import Settings

SECRET_FILE = "stripe-webhook-secret"
WEBHOOK_PATH = "/webhooks/stripe"
#: The Stripe events the engine handles (pipelines/webhook/); the endpoint subscribes to these only.
ENABLED_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.refund.updated",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.closed",
    "payout.paid",
    "payout.failed",
)


def secret_path(settings: Settings) -> Path:
    """Where `payments run` keeps the signing secret of the endpoint it registered."""
    return settings.data_dir / SECRET_FILE


def sandbox_mode(settings: Settings) -> bool:
    """True when the engine talks to the bundled Stripe sandbox (no real Stripe key configured)."""
    return settings.stripe.api_key is None


def configured_secrets(settings: Settings) -> list[str]:
    """Every webhook signing secret to try, configured ones first; empty when none is known.

    The sandbox's secret (kept under the data directory) counts only in sandbox mode: with a real Stripe key
    configured, a file any local process might have written must not make forged events acceptable.
    """
    found: list[str] = []
    if settings.stripe.webhook_secrets is not None:
        found.extend(s.strip() for s in settings.stripe.webhook_secrets.get_secret_value().split(","))
    if sandbox_mode(settings):
        with contextlib.suppress(OSError):
            found.extend(line.strip() for line in secret_path(settings).read_text(encoding="utf-8").splitlines())
    return list(dict.fromkeys(s for s in found if s))
