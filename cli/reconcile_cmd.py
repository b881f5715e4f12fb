"""``payments reconcile``: compare the engine's books with an outside source of truth.

The group lives in its own module and lists its commands lazily (:data:`COMMANDS`), so each reconciliation
(``stripe`` here; others beside it) is a module of its own and adds one line.  Exit codes: 0 nothing found,
1 something found (or the source could not be read), 2 bad usage.
"""

from __future__ import annotations

import click

from cli.lazy_group import LazyGroup

# name -> "module:attribute" of a click command.
COMMANDS: dict[str, str] = {
    "stripe": "cli.reconcile_stripe_cmd:stripe_cmd",
    "payouts": "cli.reconcile_payouts_cmd:payouts_cmd",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
def reconcile() -> None:
    """Reconcile the ledger with what outside systems say happened (exit 1 when anything differs)."""
