"""``payments review``: jobs parked ``in_review`` by the fraud rules, and the decisions on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.output import EXIT_USAGE, fail, money, print_json, print_table

if TYPE_CHECKING:
    from engine.runtime.container import Container


@click.group()
def review() -> None:
    """List and decide jobs waiting for a fraud review."""


def _container() -> Container:
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    c = bootstrap()
    try:
        c.endpoints.require("database")
    except NothingRunningError as exc:
        fail(str(exc))
    return c


@review.command("ls")
@click.option("--merchant", default=None, help="Only this merchant's jobs (default: every merchant's).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of jobs.")
def ls(merchant: str | None, as_json: bool) -> None:
    """Jobs in_review, oldest first, of every merchant (the CLI is the platform's, on call) or of --merchant."""
    from engine.ops.review import in_review

    jobs = [{**j.view(), "merchant": j.merchant_id} for j in in_review(_container(), merchant=merchant)]
    if as_json:
        print_json(jobs)
        return
    rows = [
        {
            "id": j["id"],
            "merchant": j["merchant"],
            "customer": j.get("customer"),
            "amount": money(j.get("amount"), j.get("currency")),
            "score": (j.get("fraud") or {}).get("score"),
            "reasons": ",".join((j.get("fraud") or {}).get("reasons", [])),
            "updated_at": j["updated_at"],
        }
        for j in jobs
    ]
    print_table(rows, ["id", "merchant", "customer", "amount", "score", "reasons", "updated_at"])


def _decide(job_id: str, decision: str, reviewer: str, as_json: bool) -> None:
    from engine.db.jobs import JobNotFound
    from engine.errors import TransientError
    from engine.ops.review import NotInReview, decide

    try:
        job = decide(_container(), job_id, decision, reviewer)
    except JobNotFound:
        fail(f"no job {job_id}", EXIT_USAGE)
    except (NotInReview, TransientError) as exc:  # ChargedAtStripe is a NotInReview
        fail(str(exc))
    if as_json:
        print_json(job.view())
    else:
        click.echo(f"{job.id}: {job.status}")


@review.command()
@click.argument("job_id")
@click.option("--by", "reviewer", default="cli", show_default=True, help="Who decided (kept on the job).")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
def approve(job_id: str, reviewer: str, as_json: bool) -> None:
    """Approve: the pipeline resumes after the fraud stage."""
    _decide(job_id, "approve", reviewer, as_json)


@review.command()
@click.argument("job_id")
@click.option("--by", "reviewer", default="cli", show_default=True, help="Who decided (kept on the job).")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
def decline(job_id: str, reviewer: str, as_json: bool) -> None:
    """Decline: the job fails with review_declined."""
    _decide(job_id, "decline", reviewer, as_json)
