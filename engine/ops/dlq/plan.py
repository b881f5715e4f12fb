"""What a replay would do for one job, read from its recovery point (no call to Stripe).

A replayed job resumes after its last completed stage (``jobs.stage``).  For a payment that means:

============================  ==============================================================================
recovery point                a replay …
============================  ==============================================================================
none, ``fraud``, ``vat``      ``charge``: runs the charge stage.  It looks the PaymentIntent up by
                              ``metadata.job_id`` first (a replay, or a job older than Stripe's 24 h key window),
                              so a charge that reached Stripe before the crash is reused, never repeated.
``charge``                    ``resume_after_charge``: books the ledger and notifies; Stripe is not called.
``ledger``                    ``notify_only``: only the notification is left.
settled status                ``nothing``: the job already finished; the DLQ copy is stale.
============================  ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs.job import SETTLED, Job

#: Stages of the payment pipeline, in order (pipelines/payment/__init__.py).
PAYMENT_STAGES = ("fraud", "vat", "charge", "ledger", "notify")


@dataclass(frozen=True)
class ReplayPlan:
    """``action`` is one of ``charge``, ``resume_after_charge``, ``notify_only``, ``resume``, ``nothing``,
    ``unknown`` (no job row: the worker creates it on first sight), ``poison`` (cannot be replayed)."""

    action: str
    detail: str


def plan_for(job: Job | None, *, poison: bool = False) -> ReplayPlan:
    """What replaying the message of ``job`` would do."""
    if poison:
        return ReplayPlan("poison", "the body is not a valid envelope: a replay would dead-letter it again; purge it")
    if job is None:
        return ReplayPlan("unknown", "no job row: the worker creates the job on first sight and runs every stage")
    if job.status in SETTLED:
        return ReplayPlan("nothing", f"the job is already {job.status}; the DLQ copy is removed, not re-sent")
    if job.kind != "payment":
        after = f"after stage {job.stage}" if job.stage else "from its first stage"
        return ReplayPlan("resume", f"the {job.kind} pipeline resumes {after}")
    if job.stage in (None, "fraud", "vat"):
        detail = "would charge: the charge stage looks the PaymentIntent up by job metadata first"
        progress = job.stage_results.get("charge_progress") or {}
        if progress.get("payment_intent") or progress.get("uncertain"):
            detail += " (an earlier attempt may have reached Stripe: it is reused if it exists)"
        return ReplayPlan("charge", detail)
    if job.stage == "charge":
        intent = (job.stage_results.get("charge") or {}).get("payment_intent")
        return ReplayPlan("resume_after_charge", f"already charged ({intent}); books the ledger and notifies")
    if job.stage == "ledger":
        return ReplayPlan("notify_only", "charged and booked; only the notification is left")
    return ReplayPlan("nothing", f"every stage done (last: {job.stage})")
