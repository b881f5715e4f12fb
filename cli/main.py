"""Entry point of the ``payments`` console script.

Sub-commands live in their own modules and are imported only when invoked, so ``payments --help`` and quick
commands stay fast and a command never pays for another's imports.  Exit codes: 0 ok, 1 a check failed,
2 bad usage (click's own convention for usage errors).
"""

from __future__ import annotations

import inspect

import click

from cli import lazy_group

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "audit": "cli.audit_cmd:audit",
    "config": "cli.config_cmd:config",
    "customers": "cli.customers_cmd:customers",
    "db": "cli.db_cmd:db",
    "demo": "cli.demo_cmd:demo",
    "dlq": "cli.dlq_cmd:dlq",
    "ledger": "cli.ledger_cmd:ledger",
    "plans": "cli.plans_cmd:plans",
    "queues": "cli.queues_cmd:queues",
    "rates": "cli.rates_cmd:rates",
    "reconcile": "cli.reconcile_cmd:reconcile",
    "report": "cli.report_cmd:report",
    "review": "cli.review_cmd:review",
    "run": "cli.run_cmd:run",
    "serve": "cli.serve_cmd:serve",
    "settle": "cli.settle_cmd:settle",
    "worker": "cli.worker_cmd:worker",
    "scheduler": "cli.scheduler_cmd:scheduler",
    "sim": "cli.sim_cmd:sim",
    "token": "cli.token_cmd:token",
}


class LazyGroup(lazy_group.LazyGroup):
    """The ``payments`` group: sub-commands imported on first use, listed with their whole summaries."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            full_summaries(command)
        return command


def summary_of(help_text: str) -> str:
    """The first paragraph of a command's help on one line: its summary in a command list, never cut."""
    first = inspect.cleandoc(help_text).split("\n\n", 1)[0]
    return " ".join(first.split("\b")[0].split())


def full_summaries(command: click.Command) -> None:
    """Give ``command`` and its sub-commands their whole first paragraph as the summary click lists.

    click cuts a summary to the terminal's width minus the names ("Dead letters: list, inspect,..."); with
    ``short_help`` set it prints the text whole and wraps it instead.
    """
    if command.short_help is None and command.help:
        command.short_help = summary_of(command.help)
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):  # lazy groups too: their commands are not in .commands
            sub = command.get_command(ctx, name)
            if sub is not None:
                full_summaries(sub)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="payments-engine", prog_name="payments")
def cli() -> None:
    """payments-engine: payment jobs on SQS FIFO, run by Dramatiq workers.

    With no configuration every command uses the embedded stack that `payments run` starts.
    """


def main() -> None:
    """Run the CLI; exits with its status."""
    cli(prog_name="payments")


if __name__ == "__main__":  # pragma: no cover
    main()
