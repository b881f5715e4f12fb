"""``payments plans ls [--json]``: the plans catalogue (``config/plans.json``)."""

from __future__ import annotations

import click

from cli.output import fail, print_json, print_table

COLUMNS = ("id", "name", "amount", "currency", "interval", "trial_days", "tax_category")


@click.group()
def plans() -> None:
    """Subscription plans."""


@plans.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of plans.")
def ls(as_json: bool) -> None:
    """List the plans: id, name, amount (net, minor units), currency, interval, trial_days, tax_category.

    Exits 1 with the catalogue's problem when it is invalid.
    """
    from engine.domain.plans import PlanCatalogueError, load_plans

    try:
        catalogue = load_plans()
    except PlanCatalogueError as exc:
        fail(str(exc))
    rows = [plan.as_dict() for plan in catalogue]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, COLUMNS)
