"""`payments queues create|ls`: provision the catalogue's queues (docs/design.md) and show their depth."""

from __future__ import annotations

from typing import Any

import click

from cli.output import fail, print_json, print_table
from config.settings import get_settings
from engine.broker.client import make_sqs_client
from engine.broker.queues import provision, queue_depths
from engine.runtime.endpoints import NothingRunningError, resolve_endpoints


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
    done = provision(sqs, settings.queue_prefix, visibility_timeout=settings.sqs.visibility_timeout_seconds)
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
    rows = queue_depths(_client(), get_settings().queue_prefix)
    if as_json:
        print_json(rows)
        return
    table = [{**r, "dlq": r["dlq"]["name"], "dlq_visible": r["dlq"]["visible"]} for r in rows]
    print_table(table, ["name", "type", "visible", "in_flight", "delayed", "dlq", "dlq_visible"])
