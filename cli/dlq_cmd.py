"""``payments dlq``: what died and why, and the safe ways back — replay, or purge after archiving.

``ls``, ``show``, ``replay`` and ``purge`` share the filters (``--queue``, ``--kind``, ``--since``, ``--error``);
the logic lives in :mod:`engine.ops.dlq`.  Exit codes: 0 ok, 1 nothing running / a dependency failed / something was
not replayed, 2 bad usage (an unknown queue, ``purge`` without ``--yes`` off a terminal).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cli.output import EXIT_USAGE, fail, is_terminal, print_json, print_table, shorten

if TYPE_CHECKING:
    from engine.ops.dlq.entries import DlqFilter
    from engine.runtime.container import Container

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*s)?\s*$")


def _container() -> Container:
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    c = bootstrap()
    try:
        c.endpoints.require("database", "sqs")
    except NothingRunningError as exc:
        fail(str(exc))
    return c


def _check_queue(queue: str | None) -> None:
    if queue is None:
        return
    from pipelines.registry import CATALOGUE

    try:
        CATALOGUE.resolve(queue)
    except KeyError as exc:
        fail(str(exc.args[0]), EXIT_USAGE)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    from engine.ops.dlq.entries import parse_since

    try:
        return parse_since(value)
    except ValueError:
        fail(f"--since {value!r}: give an ISO 8601 time or a duration such as 30m, 2h, 7d", EXIT_USAGE)


def _filter(kind: str | None, since: str | None, error: str | None, ids: tuple[str, ...] = ()) -> DlqFilter:
    from engine.ops.dlq.entries import DlqFilter

    return DlqFilter(kind=kind, since=_since(since), error=error, ids=frozenset(ids))


def _guard(action: Callable[[], Any]) -> Any:
    """Run ``action``; a dependency failure becomes exit 1 with one line, not a traceback."""
    import botocore.exceptions
    import sqlalchemy.exc

    try:
        return action()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, sqlalchemy.exc.SQLAlchemyError) as e:
        fail(f"{type(e).__name__}: {e}")


def filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The filters every subcommand shares."""
    f = click.option("--error", "error", default=None, help="Error class or message contains TEXT (any case).")(f)
    f = click.option("--since", default=None, help="Failed at or after T (ISO 8601, or 30m / 2h / 7d ago).")(f)
    f = click.option("--kind", default=None, help="Only jobs of this kind (payment, refund, …).")(f)
    return f


@click.group()
def dlq() -> None:
    """Dead letters: list, inspect, replay, purge."""


@dlq.command("ls")
@click.option("--queue", default=None, help="Only this queue (payments, payments.fifo or payments-dlq.fifo).")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def ls(queue: str | None, kind: str | None, since: str | None, error: str | None, as_json: bool) -> None:
    """What is in each dead-letter queue, with why it died."""
    from engine.ops.dlq.entries import join, select
    from engine.ops.dlq.messages import iter_specs, peek

    _check_queue(queue)
    flt = _filter(kind, since, error)
    c = _container()

    def load() -> list[dict[str, Any]]:
        messages = peek(c.sqs, c.settings.queue_prefix, list(iter_specs(queue, c.settings.queue_prefix)))
        with c.db.connect() as conn:
            return [e.listing() for e in select(join(conn, messages), flt)]

    rows: list[dict[str, Any]] = _guard(load)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No dead letters.")
        return
    table = [
        {**r, "error": shorten(f"{r['error']['class']}: {r['error']['message']}", 80), "failed": r["last_failed_at"]}
        for r in rows
    ]
    print_table(table, ["job_id", "queue", "kind", "stage", "attempts", "error", "failed"])


@dlq.command()
@click.argument("ident", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def show(ident: str, as_json: bool) -> None:
    """Everything about one dead letter: ID is a job id or an SQS message id."""
    from engine.ops.dlq.show import DeadLetterNotFound, describe

    c = _container()
    try:
        info: dict[str, Any] = _guard(lambda: describe(c, ident))
    except DeadLetterNotFound:
        fail(f"nothing known about {ident}")
    if as_json:
        print_json(info)
        return
    job = info["job"]
    click.echo(f"{ident}")
    if job:
        click.echo(f"  job       {job['id']} ({job['kind']}) status={job['status']} stage={job['stage']}")
        click.echo(f"  completed {', '.join(k for k in job['stage_results'] if k != 'charge_progress') or '-'}")
    for m in info["messages"]:
        click.echo(f"  in DLQ    {m['dlq']} message {m['message_id']} group {m['group_id']}")
    for r in info["reasons"]:
        click.echo(f"  reason    {r['last_failed_at']} {r['source']} attempts={r['attempts']} stage={r['stage']}")
        click.echo(f"            {r['error_class']}: {r['error_message']}")
        if r.get("traceback"):
            click.echo("            " + "\n            ".join(str(r["traceback"]).rstrip().splitlines()[-6:]))
    click.echo(f"  replay    {info['replay']['action']}: {info['replay']['detail']}")


def _parse_rate(value: str | None) -> float | None:
    if value is None:
        return None
    match = _RATE.match(value)
    if not match or float(match.group(1)) <= 0:
        fail(f"--rate {value!r}: give messages per second, e.g. 10/s", EXIT_USAGE)
    return float(match.group(1))


@dlq.command()
@click.option("--id", "ids", multiple=True, help="A job id or SQS message id (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Every dead letter the filters match.")
@click.option("--queue", default=None, help="Only this queue (payments, payments.fifo or payments-dlq.fifo).")
@filter_options
@click.option("--dry-run", is_flag=True, help="Print per job what a replay would do; move nothing.")
@click.option("--rate", default=None, help="At most N messages a second (N/s).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of results.")
def replay(
    ids: tuple[str, ...],
    all_: bool,
    queue: str | None,
    kind: str | None,
    since: str | None,
    error: str | None,
    dry_run: bool,
    rate: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Move dead letters back to their source queue (jobs back to processing), safely.

    Messages keep their MessageGroupId and get a fresh deduplication id (sha256(scope):replay:N).  A replay
    interrupted anywhere loses nothing; a message sent twice is absorbed by the job's recovery points.
    """
    from engine.ops.dlq import replay as replay_mod

    if bool(ids) == all_:
        fail("give --id ID (repeatable) or --all", EXIT_USAGE)
    _check_queue(queue)
    per_second = _parse_rate(rate)
    flt = _filter(kind, since, error, ids)
    c = _container()
    if dry_run:
        planned = _guard(lambda: replay_mod.plan(c, flt, queue))
        _print_results([r.as_dict() for r in planned], as_json, ["job_id", "queue", "action", "detail"])
        return
    if all_ and is_terminal() and not yes:
        click.confirm("Replay every dead letter the filters match?", abort=True)
    results: list[Any]
    if is_terminal() and not as_json:
        stderr = sys.stderr
        with click.progressbar(length=max(1, _dlq_depth(c, queue)), label="replaying", file=stderr) as bar:
            results = _guard(
                lambda: replay_mod.replay(c, flt, queue, rate=per_second, on_result=lambda _r: bar.update(1))
            )
    else:
        results = _guard(lambda: replay_mod.replay(c, flt, queue, rate=per_second))
    rows = [r.as_dict() for r in results]
    _print_results(rows, as_json, ["job_id", "queue", "action", "outcome"])
    if ids:
        found = {r["job_id"] for r in rows} | {r["message_id"] for r in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            fail(f"not in any DLQ: {', '.join(missing)}")
    if any(r["outcome"] == "skipped" for r in rows):
        fail("some dead letters were not replayed (see above)")


@dlq.command()
@click.option("--queue", required=True, help="The queue whose DLQ to purge (payments, payments-dlq.fifo, …).")
@filter_options
@click.option("--yes", is_flag=True, help="Really purge (required off a terminal; asked for on one).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of what was archived and deleted.")
def purge(queue: str, kind: str | None, since: str | None, error: str | None, yes: bool, as_json: bool) -> None:
    """Archive every matching dead letter (body and reason) in the database, then delete it from its DLQ."""
    from engine.ops.dlq.purge import purge as purge_dlq

    _check_queue(queue)
    flt = _filter(kind, since, error)
    if not yes:
        if not is_terminal():
            fail("purge deletes messages: add --yes", EXIT_USAGE)
        click.confirm(f"Archive and delete the matching dead letters of {queue}?", abort=True)
    c = _container()
    results = _guard(lambda: purge_dlq(c, queue, flt))
    _print_results([r.as_dict() for r in results], as_json, ["job_id", "queue", "kind", "error_class"])


def _dlq_depth(c: Container, queue: str | None) -> int:
    from engine.broker.queues import queue_depths
    from engine.ops.dlq.messages import iter_specs

    rows = queue_depths(c.sqs, c.settings.queue_prefix, tuple(iter_specs(queue, c.settings.queue_prefix)))
    return sum(r["dlq"]["visible"] or 0 for r in rows)


def _print_results(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print_json(rows)
    elif rows:
        print_table(rows, columns)
    else:
        click.echo("Nothing matched.")
