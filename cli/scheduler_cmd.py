"""``payments scheduler``: periodic tasks (the Procfile's ``scheduler``)."""

from __future__ import annotations

import signal
import threading
from datetime import datetime

import click

from cli.exiting import exit_now
from cli.output import fail, print_json


class IsoDateTime(click.ParamType):
    """Any ISO 8601 date or date-time (fractional seconds, ``Z``, offsets), as ``datetime.fromisoformat`` reads
    it."""

    name = "iso8601"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time (e.g. 2026-12-03T17:00:00.250Z)", param, ctx)


@click.command()
@click.option("--once", is_flag=True, help="Run every task once, print what each did, and exit.")
@click.option(
    "--now",
    "now",
    type=IsoDateTime(),
    default=None,
    metavar="ISO8601",
    help="With --once: run as if it were this time (any ISO 8601 date or time; UTC when no offset is given).",
)
@click.option("--json", "as_json", is_flag=True, help="With --once: print the report as JSON.")
def scheduler(once: bool, now: datetime | None, as_json: bool) -> None:
    """Run the engine's periodic tasks (DLQ sweep, and those pipelines add)."""
    from engine.audit.hooks import process_started
    from engine.ops.scheduler import run_forever, run_once
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError
    from engine.runtime.logs import configure_logging

    if now is not None and not once:
        raise click.UsageError("--now only goes with --once")
    c = bootstrap()
    configure_logging(c.settings)
    try:
        c.endpoints.require("database", "sqs")
    except NothingRunningError as exc:
        fail(str(exc))
    if once:
        if now is not None and now.tzinfo is None:
            from datetime import UTC

            now = now.replace(tzinfo=UTC)
        report = run_once(c, now)
        if as_json:
            print_json(report)
        else:
            for name, line in report.items():
                click.echo(f"{name}: {line}")
        return
    process_started(c, "scheduler")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_forever(c, stop)
    exit_now(0)
