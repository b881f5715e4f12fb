"""``payments audit``: verify the hash-chained audit trail, and show who did what to a job.

``verify`` recomputes the chain from the database and from the audit bucket and exits 1 naming the first bad
record; ``ls --job ID`` lists a job's records; ``ship`` ships the records not shipped yet now (the scheduler does it
hourly).  Exit codes: 0 ok, 1 the chain is broken or a dependency failed, 2 bad usage.  See docs/audit.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from cli.output import EXIT_USAGE, fail, print_json, print_table

if TYPE_CHECKING:
    from engine.runtime.container import Container


@click.group()
def audit() -> None:
    """The audit trail: verify it, list a job's records, ship it to S3."""


def _container(*needs: str) -> Container:
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    c = bootstrap()
    try:
        c.endpoints.require(*needs)
    except NothingRunningError as exc:
        fail(str(exc))
    return c


def _since_seq(c: Container, since: str | None) -> int:
    """``--since``: a record number, or an ISO 8601 time / a duration (30m, 2h, 7d) for the first record then."""
    if since is None:
        return 1
    if since.isdigit():
        return max(1, int(since))
    from engine.audit.chain import first_seq_at, head
    from engine.ops.dlq.entries import parse_since

    try:
        at = parse_since(since)
    except ValueError:
        fail(f"--since {since!r}: give a record number, an ISO 8601 time or a duration such as 2h, 7d", EXIT_USAGE)
    with c.db.connect() as conn:
        seq = first_seq_at(conn, at)
        # Nothing since then: check from just after the head (the head itself is still compared).
        return seq if seq is not None else head(conn)[0] + 1


@audit.command()
@click.option("--since", default=None, help="Start at this record number, time (ISO 8601) or age (2h, 7d).")
@click.option("--no-s3", is_flag=True, help="Check the database's chain only (not the shipped objects).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(since: str | None, no_s3: bool, as_json: bool) -> None:
    """Recompute the chain from the database and from S3; exit 1 naming the first bad record."""
    from engine.audit.chain import seal
    from engine.audit.ship import audit_bucket
    from engine.audit.verify import verify as run_verify

    c = _container("database") if no_s3 else _container("database", "s3")
    seal(c.db)  # queued records are chained first, so they are verified too
    report = run_verify(c.db, None if no_s3 else c.s3, audit_bucket(c.settings), _since_seq(c, since))
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(
            f"database: {report.database_records} record(s) from {report.first_seq}; "
            f"s3: {report.s3_records} record(s) in {report.s3_objects} object(s)"
        )
    if not report.ok:
        for problem in report.problems:
            click.echo(f"BAD {problem}", err=True)
        raise SystemExit(1)
    if not as_json:
        click.echo("ok: the audit chain is intact")


@audit.command("ls")
@click.option("--job", "job_id", required=True, help="The job whose records to list.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of records.")
def ls(job_id: str, as_json: bool) -> None:
    """Who did what to a job, oldest first (by time)."""
    from engine.audit.chain import for_job, seal

    c = _container("database")
    seal(c.db)
    with c.db.connect() as conn:
        found = for_job(conn, job_id)
    # By time: a queued record (an API call's) gets its place in the chain when sealed, possibly after a later one.
    rows = sorted(
        ({"seq": r.seq, **r.fields(), "hash": r.hash} for r in found), key=lambda r: (r.get("at", ""), r["seq"])
    )
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["detail"] = json.dumps(row.get("detail") or {}, sort_keys=True)
    print_table(rows, ["seq", "at", "actor", "action", "detail"])


@audit.command()
def ship() -> None:
    """Ship the records not shipped yet to the audit bucket now."""
    from engine.audit.ship import ship_task

    c = _container("database", "s3")
    click.echo(ship_task(c.db, c.s3, c.settings, c.clock()))
