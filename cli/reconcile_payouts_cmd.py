"""``payments reconcile payouts``: every payout equals its balance transactions and is booked; ``stripe_clearing``
equals what Stripe has not paid out (``engine/ops/payout_reconcile.py``)."""

from __future__ import annotations

import click

from cli.reconcile_report import run_reconciliation


@click.command("payouts")
@click.option("--currency", metavar="CUR", help="Only this currency (ISO 4217, any case).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as a JSON object.")
def payouts_cmd(currency: str | None, as_json: bool) -> None:
    """Page through Stripe's payouts and their balance transactions and compare them with the ledger: a payout
    whose transactions do not add up to it, a paid payout not booked (or booked for another amount), a failed one
    left booked, and stripe_clearing differing from what Stripe holds unpaid (zero once everything is paid out).

    Exit 0 when everything agrees, 1 when anything is found (or Stripe or the database cannot be read).
    """
    from engine.ops.payout_reconcile import reconcile_payouts

    run_reconciliation(
        lambda c: reconcile_payouts(c.db, c.stripe, currency), ["kind", "payout", "currency", "detail"], as_json
    )
