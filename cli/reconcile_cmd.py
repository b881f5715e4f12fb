"""``payments reconcile``: compare the engine's books with an outside source of truth.

The group lives in its own module and lists its commands lazily (:data:`COMMANDS`), so each reconciliation
(``stripe`` here; others beside it) is a module of its own and adds one line.  Exit codes: 0 nothing found,
1 something found (or the source could not be read), 2 bad usage.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command.
COMMANDS: dict[str, str] = {
    "stripe": "cli.reconcile_stripe_cmd:stripe_cmd",
    "payouts": "cli.reconcile_payouts_cmd:payouts_cmd",
}


class _LazyReconcile(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyReconcile)
def reconcile() -> None:
    """Reconcile the ledger with what outside systems say happened (exit 1 when anything differs)."""
