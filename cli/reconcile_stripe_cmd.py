"""``payments reconcile stripe``: the ledger against Stripe, per job (engine/ops/stripe_reconcile.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from cli.reconcile_report import run_reconciliation


def _since(value: str | None) -> datetime | None:
    """``--since`` as an aware datetime (a date is midnight UTC); exit 2 when it is not a date."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time", param_hint="--since"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command("stripe")
@click.option("--since", "since", metavar="DATE", help="Only objects and bookings created since DATE (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as a JSON object.")
def stripe_cmd(since: str | None, as_json: bool) -> None:
    """Page through Stripe's PaymentIntents and Refunds and the ledger, and report per job: duplicate live
    intents, an intent or refund with no booking, a booking with no Stripe object, an amount or currency that
    differs.

    Exit 0 when the ledger equals Stripe, 1 when anything is found (or Stripe or the database cannot be read).
    """
    from engine.ops.stripe_reconcile import reconcile_stripe

    window = _since(since)
    run_reconciliation(
        lambda c: reconcile_stripe(c.db, c.stripe, since=window), ["kind", "job", "stripe", "detail"], as_json
    )
