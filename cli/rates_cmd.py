"""``payments rates``: import the ECB's euro reference rates, list them, convert an amount by the OSS rule."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from cli.output import EXIT_USAGE, fail, print_json, print_table


def _database_url() -> str:
    """The database of the configured or running stack; exits 1 with the reason when there is none."""
    from engine.runtime.endpoints import NothingRunningError, resolve_endpoints

    try:
        url = resolve_endpoints().require("database").database_url
    except NothingRunningError as exc:
        fail(str(exc))
    assert url is not None
    return url


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: give a date as YYYY-MM-DD", EXIT_USAGE)


@click.group()
def rates() -> None:
    """ECB euro reference rates (units of a currency per euro), as the OSS return converts at."""


@rates.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--replace", is_flag=True, help="Overwrite stored rates the file gives differently.")
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as a JSON object.")
def import_(file: str, replace: bool, as_json: bool) -> None:
    """Store the rates of FILE, an ECB file as published: eurofxref-hist.csv (or .zip), eurofxref.csv,
    eurofxref-daily.xml, eurofxref-hist-90d.xml or eurofxref-hist.xml ('-' reads standard input).

    Idempotent: rates already stored alike are left alone.  Exit 2, writing nothing, when the file is not an ECB
    rates file or gives a stored rate differently (unless --replace).
    """
    import sqlalchemy as sa

    from engine.db.engine import get_engine
    from engine.db.rates import RatesConflict, import_rates
    from engine.domain.ecb_files import MAX_FILE_BYTES, EcbFileError, parse

    if file == "-":
        data, name = sys.stdin.buffer.read(MAX_FILE_BYTES + 1), "<stdin>"
    else:
        path = Path(file)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}", EXIT_USAGE)
        name = path.name
    try:
        published = parse(data, name)
    except EcbFileError as exc:
        fail(f"not imported: {exc}", EXIT_USAGE)
    if not published:
        fail(f"not imported: {name} holds no rates", EXIT_USAGE)
    url = _database_url()
    try:
        with get_engine(url).begin() as conn:
            result = import_rates(conn, published, source=name, replace=replace)
    except RatesConflict as exc:
        fail(f"not imported: {exc}", EXIT_USAGE)
    except sa.exc.SQLAlchemyError as exc:
        fail(f"cannot store the rates: {exc.__class__.__name__}: {_first_line(exc)}")
    if as_json:
        print_json(result.to_json())
        return
    span = f"{result.first_day} to {result.last_day}" if result.first_day != result.last_day else f"{result.first_day}"
    click.echo(
        f"{result.inserted} rate(s) stored, {result.unchanged} already stored"
        + (f", {result.replaced} replaced" if result.replaced else "")
        + f" ({len(result.currencies)} currencies, {span})"
    )


@rates.command(name="ls")
@click.option("--currency", default=None, help="Only this currency (ISO 4217).")
@click.option("--from", "first", default=None, metavar="YYYY-MM-DD", help="Published on or after this day.")
@click.option("--to", "last", default=None, metavar="YYYY-MM-DD", help="Published on or before this day.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {date, currency, rate, source}.")
def ls(currency: str | None, first: str | None, last: str | None, as_json: bool) -> None:
    """List stored rates, newest first."""
    from engine.db.engine import get_engine
    from engine.db.rates import listing

    start, end = _day(first, "--from"), _day(last, "--to")
    with get_engine(_database_url()).connect() as conn:
        rows = listing(conn, currency, start, end)
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("no rates stored" + (f" for {currency.upper()}" if currency else ""))
    else:
        print_table(rows, ["date", "currency", "rate", "source"])


@rates.command()
@click.argument("amount")
@click.argument("source")
@click.argument("target")
@click.option("--date", "on", required=True, metavar="YYYY-MM-DD", help="The last day of the period.")
@click.option("--json", "as_json", is_flag=True, help="Print {amount, rates, result} as JSON.")
def convert(amount: str, source: str, target: str, on: str, as_json: bool) -> None:
    """Convert AMOUNT minor units of SOURCE into TARGET at the rates the OSS return uses for a period ending
    on --date: that day's publication, or the next one when the ECB published nothing that day.

    Exit 2 for a malformed amount, currency or date; 1 when a rate is missing (the message names it).
    """
    from engine.db.engine import get_engine
    from engine.db.rates import load_window, period_end_window
    from engine.domain.conversion import RateMissing
    from engine.domain.conversion import convert as run_convert
    from engine.domain.money import UnknownCurrency, format_amount
    from engine.domain.money import currency as currency_of

    if not amount.lstrip("-").isdigit():
        fail(f"AMOUNT {amount!r}: give an integer count of minor units (12345 for 123.45 EUR)", EXIT_USAGE)
    try:
        src, dst = currency_of(source), currency_of(target)
    except UnknownCurrency as exc:
        fail(str(exc), EXIT_USAGE)
    day = _day(on, "--date")
    assert day is not None
    with get_engine(_database_url()).connect() as conn:
        table = load_window(conn, *period_end_window(day))
    try:
        rate_from, rate_to = table.period_end_rate(src.code, day), table.period_end_rate(dst.code, day)
    except RateMissing as exc:
        fail(str(exc))
    result = run_convert(int(amount), rate_from, rate_to)
    if as_json:
        print_json({"amount": int(amount), "rates": [rate_from.to_json(), rate_to.to_json()], "result": result})
        return
    used = ", ".join(f"{r.currency.upper()} {r.value} ({r.day})" for r in (rate_from, rate_to) if r.currency != "eur")
    click.echo(f"{format_amount(int(amount), src)} = {format_amount(result, dst)} at {used or 'par'}")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else repr(orig)
