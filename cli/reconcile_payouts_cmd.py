"""``payments reconcile payouts``: every payout equals its balance transactions and is booked; ``stripe_clearing``
equals what Stripe has not paid out (``engine/ops/payout_reconcile.py``)."""

from __future__ import annotations

import click

from cli.output import EXIT_CHECK_FAILED, fail, print_json, print_table


@click.command("payouts")
@click.option("--currency", metavar="CUR", help="Only this currency (ISO 4217, any case).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as a JSON object.")
def payouts_cmd(currency: str | None, as_json: bool) -> None:
    """Page through Stripe's payouts and their balance transactions and compare them with the ledger: a payout
    whose transactions do not add up to it, a paid payout not booked (or booked for another amount), a failed one
    left booked, and stripe_clearing differing from what Stripe holds unpaid (zero once everything is paid out).

    Exit 0 when everything agrees, 1 when anything is found (or Stripe or the database cannot be read).
    """
    import sqlalchemy as sa
    import stripe

    from engine.ops.payout_reconcile import reconcile_payouts
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    try:
        c = bootstrap()
        report = reconcile_payouts(c.db, c.stripe, currency)
    except NothingRunningError as exc:
        fail(str(exc))
    except stripe.StripeError as exc:
        fail(f"cannot read Stripe: {type(exc).__name__}: {exc.user_message or exc}")
    except sa.exc.SQLAlchemyError as exc:
        fail(f"cannot read the ledger: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(report.line())
        if report.findings:
            print_table([f.to_dict() for f in report.findings], ["kind", "payout", "currency", "detail"])
    if not report.ok:
        raise SystemExit(EXIT_CHECK_FAILED)
