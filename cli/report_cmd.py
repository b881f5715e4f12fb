"""``payments report``: ask for a report (the OSS return, revenue, settlement) and read what it produced.

``report oss|revenue|settlement …`` accepts a report job *directly* (PostgreSQL and SQS of the running or configured
stack) through the same code as ``POST /v1/reports`` — the same checks, one commit for the job and its idempotency
answer, then the message — so it works with or without the HTTP ingest.  A worker generates the report; ``--wait``
waits for it and prints where its files are.  The client is ``--as`` (default ``cli``); the Idempotency-Key is
``--idempotency-key`` or a fresh one.  Exit codes: 0 accepted (with ``--wait``: succeeded), 1 the stack is not
reachable or the job did not succeed, 2 bad input (the message names the field).
"""

from __future__ import annotations

import uuid
from typing import Any

import click

from cli.output import EXIT_CHECK_FAILED, EXIT_USAGE, fail, print_json, print_table
from cli.stack_jobs import load_job, stack_container, wait_for_job

_COMMON = [
    click.option("--wait", is_flag=True, help="Wait until the report is generated and print where its files are."),
    click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds --wait waits at most."),
    click.option("--json", "as_json", is_flag=True, help="Print the job as a JSON object."),
    click.option("--idempotency-key", "key", default=None, help="Idempotency-Key (default: a fresh one)."),
    click.option("--as", "client", default="cli", show_default=True, help="The requesting client (message group)."),
]


def _common(command: Any) -> Any:
    for option in reversed(_COMMON):
        command = option(command)
    return command


@click.group()
def report() -> None:
    """Reports from the ledger: the OSS VAT return, revenue, settlement (docs/reports.md)."""


@report.command()
@click.argument("period")
@_common
def oss(period: str, **options: Any) -> None:
    """The One-Stop Shop VAT return of PERIOD, a quarter: 2026-Q4."""
    _ask({"type": "oss_return", "period": period}, **options)


@report.command()
@click.argument("period")
@click.option("--currency", default=None, help="Only this currency (ISO 4217).")
@_common
def revenue(period: str, currency: str | None, **options: Any) -> None:
    """Revenue per day and currency over PERIOD: a quarter (2026-Q4), a month (2026-11) or a day (2026-11-30)."""
    body: dict[str, Any] = {"type": "revenue", "period": period}
    if currency is not None:
        body["currency"] = currency
    _ask(body, **options)


@report.command()
@click.argument("day", metavar="DATE")
@_common
def settlement(day: str, **options: Any) -> None:
    """Settlement per clearing account and currency on DATE: 2026-11-30."""
    _ask({"type": "settlement", "date": day}, **options)


@report.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job as a JSON object.")
def show(job_id: str, as_json: bool) -> None:
    """Print report job JOB_ID: its status and, once generated, its files and headline figures.

    Exit 1 when there is no such report job.
    """
    c = stack_container("database", "sqs")
    job = load_job(c, job_id)
    if job is None or job.get("kind") != "report":
        fail(f"no report job {job_id}")
    if as_json:
        print_json(job)
    else:
        _print_job(job)


def _ask(body: dict[str, Any], *, wait: bool, timeout: float, as_json: bool, key: str | None, client: str) -> None:
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from engine.ingest.errors import ApiError
    from engine.reports.generate import ReportRequestError
    from pipelines.report.accept import accept_report
    from pipelines.report.request import ReportRequest

    try:
        spec = ReportRequest.model_validate(body).spec(datetime.now(UTC).date())
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", EXIT_USAGE)
    except ReportRequestError as exc:
        fail(f"{exc.param}: {exc.message} ({exc.code})", EXIT_USAGE)
    c = stack_container("database", "sqs")
    try:
        answer = accept_report(c.acceptor, spec, body, client=client, key=key or uuid.uuid4().hex, correlation_id=None)
    except ApiError as exc:
        fail(f"{exc.code}: {exc.message}", EXIT_USAGE if exc.status == 422 else EXIT_CHECK_FAILED)
    job = answer.body
    if wait:
        job = wait_for_job(c, job["id"], timeout)
    if as_json:
        print_json(job)
    else:
        _print_job(job)
    if wait and job.get("status") != "succeeded":
        raise SystemExit(EXIT_CHECK_FAILED)


def _print_job(job: dict[str, Any]) -> None:
    from engine.domain.money import format_amount

    click.echo(f"job {job['id']}  {job['kind']}  {job['status']}  stage={job.get('stage') or '-'}")
    if job.get("error"):
        click.echo(f"error {job['error'].get('code')}: {job['error'].get('message')}")
    r = job.get("report") or {}
    asked = r.get("period") or r.get("date")
    click.echo(
        f"report {r.get('type')} {asked}"
        + (f" {str(r['currency']).upper()}" if r.get("currency") else "")
        + ("  PRELIMINARY" if r.get("preliminary") else "")
    )
    if "files" not in r:
        return
    click.echo(
        f"{r['transactions']} ledger transaction(s) read; "
        + ("agrees with the ledger" if r["agrees_with_ledger"] else "DOES NOT AGREE with the ledger")
    )
    if "by_country" in r:
        click.echo("")
        rows = [{"country": c["country"] or "-", "vat": format_amount(c["vat_eur"], "eur"),
                 "corrections": format_amount(c["corrections_vat_eur"], "eur"),
                 "total": format_amount(c["total_vat_eur"], "eur")} for c in r["by_country"]]  # fmt: skip
        print_table(rows, ["country", "vat", "corrections", "total"])
        click.echo(f"VAT due: {format_amount(r['total_vat_eur'], 'eur')}")
    if "totals" in r:
        click.echo("")
        rows = [{"currency": cur.upper(), **{k: format_amount(v, cur) for k, v in t.items() if k != "transactions"}}
                for cur, t in r["totals"].items()]  # fmt: skip
        print_table(rows, ["currency", "gross", "vat", "refunds", "fees", "disputes", "net"])
    click.echo("")
    print_table(r["files"], ["name", "rows", "url"])
