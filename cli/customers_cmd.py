"""``payments customers``: GDPR erasure of a customer's personal data (docs/audit.md, "Erasure")."""

from __future__ import annotations

import click

from cli.output import fail, print_json


@click.group()
def customers() -> None:
    """Customers' personal data."""


@customers.command()
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print what was changed as JSON.")
def erase(customer_id: str, as_json: bool) -> None:
    """Pseudonymise CUSTOMER_ID's e-mail and name in jobs and notifications; recorded in the audit chain."""
    from engine.audit.erase import erase_customer
    from engine.audit.hooks import cli_actor
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    c = bootstrap()
    try:
        c.endpoints.require("database")
    except NothingRunningError as exc:
        fail(str(exc))
    done = erase_customer(c.db, customer_id, actor=cli_actor())
    if as_json:
        print_json(done.as_dict())
        return
    click.echo(
        f"{customer_id}: erased in {done.jobs} job(s), {done.notifications} notification(s), "
        f"{done.answers} saved answer(s), {done.dead_letters} dead letter(s); audit record {done.audit_seq}"
    )
