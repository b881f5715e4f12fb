"""``payments customers``: GDPR erasure of a customer's personal data (docs/audit.md, "Erasure")."""

from __future__ import annotations

import click

from cli.output import EXIT_USAGE, fail, print_json
from engine.domain.merchant import DEFAULT_MERCHANT


@click.group()
def customers() -> None:
    """Customers' personal data."""


@customers.command()
@click.argument("customer_id")
@click.option(
    "--merchant",
    default=DEFAULT_MERCHANT,
    show_default=True,
    help="The merchant whose customer this is (customer ids are per merchant).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was changed as JSON.")
def erase(customer_id: str, merchant: str, as_json: bool) -> None:
    """Pseudonymise MERCHANT's customer CUSTOMER_ID's e-mail and name in jobs and notifications; recorded in the
    audit chain."""
    from engine.audit.erase import erase_customer
    from engine.audit.hooks import cli_actor
    from engine.domain.merchant import check_merchant_id
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    try:
        check_merchant_id(merchant)
    except ValueError as exc:
        fail(f"--merchant {merchant!r}: {exc}", EXIT_USAGE)
    c = bootstrap()
    try:
        c.endpoints.require("database")
    except NothingRunningError as exc:
        fail(str(exc))
    done = erase_customer(c.db, customer_id, actor=cli_actor(), merchant=merchant)
    if as_json:
        print_json(done.as_dict())
        return
    click.echo(
        f"{customer_id}: erased in {done.jobs} job(s), {done.notifications} notification(s), "
        f"{done.answers} saved answer(s), {done.dead_letters} dead letter(s); audit record {done.audit_seq}"
    )
