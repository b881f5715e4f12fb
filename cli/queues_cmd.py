"""`payments queues create|ls|check`: provision the catalogue's queues (docs/design.md; ``pipelines/registry.py:
CATALOGUE``), show their depth, check them for drift (docs/deploy.md)."""

from __future__ import annotations

import sys
from typing import Any

import click

from cli.output import EXIT_CHECK_FAILED, fail, print_json, print_table
from config.settings import get_settings
from engine.broker.client import make_sqs_client
from engine.broker.drift import check_queues, unsafe_queues
from engine.broker.queues import provision, queue_depths
from engine.runtime.endpoints import NothingRunningError, resolve_endpoints
from pipelines.registry import CATALOGUE


def _client() -> Any:
    try:
        return make_sqs_client(resolve_endpoints())
    except NothingRunningError as exc:
        fail(str(exc))


@click.group()
def queues() -> None:
    """Create and inspect the SQS queues (names take PAYMENTS_QUEUE_PREFIX verbatim)."""


@queues.command("create")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def create(as_json: bool) -> None:
    """Create every queue with its dead-letter queue (idempotent; repairs drifted attributes)."""
    sqs = _client()
    settings = get_settings()
    done = provision(sqs, settings.queue_prefix, CATALOGUE, visibility_timeout=settings.sqs.visibility_timeout_seconds)
    rows = [
        {
            "name": p.name,
            "dlq": p.dlq_name,
            "status": "created" if p.created else ("updated" if p.updated else "exists"),
            "url": p.url,
        }
        for p in done
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['status']:8} {row['name']}  (dead letters: {row['dlq']})")


@queues.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def ls(as_json: bool) -> None:
    """Show visible / in-flight / delayed messages per queue and the DLQ's visible count."""
    rows = queue_depths(_client(), get_settings().queue_prefix, CATALOGUE)
    if as_json:
        print_json(rows)
        return
    table = [{**r, "dlq": r["dlq"]["name"], "dlq_visible": r["dlq"]["visible"]} for r in rows]
    print_table(table, ["name", "type", "visible", "in_flight", "delayed", "dlq", "dlq_visible"])


@queues.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print {ok, differences: [...]} as JSON.")
def check(as_json: bool) -> None:
    """Compare every live queue and DLQ with what the engine requires; exit 1 naming each difference.

    Checked: existence, FIFO, ContentBasedDeduplication off, VisibilityTimeout, MessageRetentionPeriod, the
    RedrivePolicy's target and maxReceiveCount, and encryption at rest.  Differences marked unsafe (no DLQ, no
    redrive, content-based deduplication on) are those for which `payments worker` refuses the queue.
    """
    settings = get_settings()
    differences = check_queues(
        _client(), settings.queue_prefix, CATALOGUE, visibility_timeout=settings.sqs.visibility_timeout_seconds
    )
    if as_json:
        print_json(
            {
                "ok": not differences,
                "refused": sorted(unsafe_queues(differences, settings.queue_prefix, CATALOGUE)),
                "differences": [d.as_dict() for d in differences],
            }
        )
    else:
        for d in differences:
            click.echo(d.describe())
        if not differences:
            click.echo("every queue is as the engine requires")
    if differences:
        sys.exit(EXIT_CHECK_FAILED)
