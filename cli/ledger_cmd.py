"""``payments ledger``: check the double-entry ledger and print account balances."""

from __future__ import annotations

import click

from cli.output import EXIT_CHECK_FAILED, fail, money, print_json, print_table


def _database_url() -> str:
    """The database of the configured or running stack; exits 1 with the reason when there is none."""
    from engine.runtime.endpoints import NothingRunningError, resolve_endpoints

    try:
        url = resolve_endpoints().require("database").database_url
    except NothingRunningError as exc:
        fail(str(exc))
    assert url is not None
    return url


@click.group()
def ledger() -> None:
    """The double-entry ledger (debits positive, balanced per currency)."""


@ledger.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as a JSON object.")
def verify(as_json: bool) -> None:
    """Check that every transaction balances per currency and has at least two entries.

    Exit 0 when the ledger balances, 1 (listing every offender) when it does not or cannot be read.
    """
    import sqlalchemy as sa

    from engine.db.engine import get_engine
    from engine.db.ledger import verify as run_verify

    url = _database_url()
    try:
        report = run_verify(get_engine(url))
    except sa.exc.SQLAlchemyError as exc:
        fail(f"cannot read the ledger: {exc.__class__.__name__}: {_first_line(exc)}")
    if as_json:
        print_json(report.to_dict())
        if not report.ok:
            raise SystemExit(EXIT_CHECK_FAILED)
        return
    if report.ok:
        click.echo(f"ledger balanced: {report.transactions} transactions, {report.entries} entries")
        return
    if report.offenders:
        print_table(
            [
                {"problem": o.problem, "transaction": o.transaction_id, "effect_key": o.effect_key, "detail": o.message}
                for o in report.offenders
            ],
            ["problem", "transaction", "effect_key", "detail"],
        )
    for guard in report.guards_inactive:
        click.echo(f"guard trigger {guard}")
    fail(
        f"ledger does not balance: {len(report.offenders)} offending transaction(s), "
        f"{len(report.guards_inactive)} inactive guard(s) "
        f"({report.transactions} transactions, {report.entries} entries checked)"
    )


@ledger.command()
@click.option("--account", "account_prefix", metavar="PREFIX", help="Only accounts starting with PREFIX.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {account, currency, balance}.")
def balances(account_prefix: str | None, as_json: bool) -> None:
    """Print each account's balance per currency in minor units (debits positive)."""
    import sqlalchemy as sa

    from engine.db.engine import get_engine
    from engine.db.ledger import balances as run_balances

    url = _database_url()
    try:
        rows = run_balances(get_engine(url), account_prefix)
    except sa.exc.SQLAlchemyError as exc:
        fail(f"cannot read the ledger: {exc.__class__.__name__}: {_first_line(exc)}")
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no ledger entries" + (f" for accounts starting with {account_prefix!r}" if account_prefix else ""))
        return
    print_table(
        [{**dict(r), "balance": money(dict(r)["balance"], dict(r)["currency"])} for r in rows],
        ["account", "balance"],  # the balance carries its currency ("-2,366.67 EUR"); --json keeps minor units
    )


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy appends the SQL and a help link; the driver's first line says what went wrong.
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else repr(orig)
