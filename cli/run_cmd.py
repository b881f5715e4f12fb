"""``payments run``: the whole engine on this machine, embedded defaults, one command."""

from __future__ import annotations

import signal

import click

from cli.exiting import exit_now
from cli.output import fail


@click.command()
@click.option("--no-worker", is_flag=True, help="Do not start a worker.")
@click.option("--no-scheduler", is_flag=True, help="Do not start the scheduler.")
def run(no_worker: bool, no_scheduler: bool) -> None:
    """Start PostgreSQL, the local SQS/S3 endpoint, Redis, the Stripe sandbox, ingest, worker and scheduler."""
    from cli.local_stack import require_local_stack

    require_local_stack("run")
    from config.settings import get_settings
    from sandbox.stack import Stack, StackError

    stack = Stack(get_settings(), say=lambda m: click.echo(m, err=True))
    supervising = False

    def _on_sigterm(signum: int, frame: object) -> None:
        if supervising:
            stack.request_stop()
        else:
            raise KeyboardInterrupt  # still starting: abort the start (it undoes what it started)

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        click.echo("starting payments-engine …", err=True)
        stack.start(with_worker=not no_worker, with_scheduler=not no_scheduler)
    except StackError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("stopped while starting.", err=True)
        exit_now(0)
    click.echo(stack.summary())
    supervising = True
    try:
        stack.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping …", err=True)
        stack.stop()
        click.echo("stopped.", err=True)
    exit_now(0)
