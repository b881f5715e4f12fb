"""``payments settle``: upload a POS batch for settlement and read its report.

``settle upload FILE`` stores the batch and enqueues the job *directly* (S3, PostgreSQL, SQS of the running or
configured stack) through the same code as ``POST /v1/settlements`` — the card-number scan while streaming, the
multipart upload, one commit for the job and its idempotency answer, then the message — so it works wherever the
stack's parts are reachable, with or without the HTTP ingest.  The message group is the uploading client (``--as``,
default ``cli``); the Idempotency-Key is ``--idempotency-key`` or ``sha256:<the file's SHA-256>``, so re-running
the same command after a timeout answers the first job instead of making a second one whose rows are all
duplicates.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import click

from cli.output import EXIT_CHECK_FAILED, fail, is_terminal, print_json, print_table
from cli.stack_jobs import load_job, stack_container, wait_for_job

READ_BYTES = 1024 * 1024


def default_key(sha256_hex: str) -> str:
    """The Idempotency-Key of an upload without ``--idempotency-key``: the same file, the same key."""
    return f"sha256:{sha256_hex}"


@click.group()
def settle() -> None:
    """POS batch settlement: upload a CSV batch, read a batch's report."""


@settle.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the job as a JSON object.")
@click.option(
    "--idempotency-key",
    "key",
    default=None,
    help="Idempotency-Key (default: sha256:<the file's SHA-256>, so a re-run answers the first job).",
)
@click.option("--as", "client", default="cli", show_default=True, help="The uploading client (message group).")
@click.option("--wait", is_flag=True, help="Wait until the job is settled and print it then.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds --wait waits at most.")
def upload(file: Path, as_json: bool, key: str | None, client: str, wait: bool, timeout: float) -> None:
    """Upload FILE (a POS batch CSV) and enqueue its settlement job; prints the job.

    Exit 1 when the file carries a card number or is not a POS batch (nothing is stored then), or when the stack
    is not reachable.
    """
    from engine.adapters.s3 import settlements_bucket
    from engine.ingest.errors import ApiError
    from pipelines.settlement.upload import BatchSink, InvalidBatch, PanDetected, accept_batch

    c = stack_container("database", "s3", "sqs")
    sink = BatchSink(c.s3, settlements_bucket(c.settings))
    size = file.stat().st_size
    digest = hashlib.sha256()
    try:
        with file.open("rb") as f, _progress(size, f"uploading {file.name}") as bar:
            while chunk := f.read(READ_BYTES):
                sink.feed(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        stored = sink.finish()
    except PanDetected as exc:
        fail(f"refused: {exc}; nothing was stored (send card_last4 only)")
    except InvalidBatch as exc:
        fail(f"refused: {exc}")
    except BaseException:
        sink.abort()
        raise
    try:
        answer = accept_batch(
            c.acceptor, c.s3, stored, client=client, key=key or default_key(digest.hexdigest()), correlation_id=None
        )
    except ApiError as exc:
        fail(f"{exc.code}: {exc.message}")
    job = answer.body
    if wait:
        job = wait_for_job(c, job["id"], timeout)
    if as_json:
        print_json(job)
    else:
        _print_job(job)
    if wait and job.get("status") != "succeeded":
        raise SystemExit(EXIT_CHECK_FAILED)


@settle.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job (counts, totals, first rejects) as JSON.")
def report(job_id: str, as_json: bool) -> None:
    """Print the settlement report of job JOB_ID: counts, totals per terminal and currency, the first rejects.

    Exit 1 when there is no such settlement job.
    """
    c = stack_container("database", "s3", "sqs")
    job = load_job(c, job_id)
    if job is None or job.get("kind") != "settlement":
        fail(f"no settlement job {job_id}")
    if as_json:
        print_json(job)
        return
    _print_job(job)


def _print_job(job: dict[str, Any]) -> None:
    click.echo(f"job {job['id']}  {job['kind']}  {job['status']}  stage={job.get('stage') or '-'}")
    if job.get("batch"):
        click.echo(f"batch {job['batch']['object']}  {job['batch']['bytes']} bytes  sha256 {job['batch']['sha256']}")
    if job.get("error"):
        click.echo(f"error {job['error'].get('code')}: {job['error'].get('message')}")
    counts = job.get("counts")
    if counts:
        click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
    if job.get("totals"):
        click.echo("")
        print_table(job["totals"], ["terminal_id", "currency", "sales", "refunds", "voids", "fee", "net"])
    rejects = job.get("rejects") or []
    if rejects:
        click.echo("")
        print_table(rejects[:50], ["row", "transaction_id", "reason"])
        if counts and counts.get("rejected", 0) > 50:
            click.echo(f"… {counts['rejected'] - 50} more; all of them in the report")
    if job.get("report"):
        click.echo(f"\nreport {job['report']['json']}  {job['report']['csv']}")


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        pass


def _progress(total: int, label: str) -> Any:
    """A byte progress bar on a terminal (stderr), nothing when piped."""
    if not is_terminal():
        return _NoBar()
    return click.progressbar(length=total, label=label, file=sys.stderr)
