"""``payments reconcile stripe``: the ledger against Stripe, per job (engine/ops/stripe_reconcile.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from cli.output import EXIT_CHECK_FAILED, fail, print_json, print_table


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
    import sqlalchemy as sa
    import stripe

    from engine.ops.stripe_reconcile import reconcile_stripe
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    window = _since(since)
    try:
        c = bootstrap()
        report = reconcile_stripe(c.db, c.stripe, since=window)
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
            print_table([f.to_dict() for f in report.findings], ["kind", "job", "stripe", "detail"])
    if not report.ok:
        raise SystemExit(EXIT_CHECK_FAILED)
