"""What a replay would do for one job, read from its recovery point and its kind's stage list (no call to Stripe).

A replayed job resumes after its last completed stage (``jobs.stage``).  A kind that declares how a replay meets
its external effect (``JobKind.replay``: the payment kind's charge) gets a plan named after that stage; for a
payment:

============================  ==============================================================================
recovery point                a replay …
============================  ==============================================================================
none, ``fraud``, ``vat``      ``charge``: runs the charge stage.  It looks the PaymentIntent up by
                              ``metadata.job_id`` first (a replay, or a job older than Stripe's 24 h key window),
                              so a charge that reached Stripe before the crash is reused, never repeated.
``charge``                    ``resume_after_charge``: books the ledger and notifies; Stripe is not called.
``ledger``                    ``resume_after_charge`` (only a payment that asked for an invoice checkpoints here):
                              stores the invoice's PDF under the number already issued, and notifies.
``invoice``                   ``notify_only``: only the notification is left.
settled status                ``nothing``: the job already finished; the DLQ copy is stale.
============================  ==============================================================================

Every other kind gets ``resume``.  The stage names come from the kind's stage list, so a stage added to a
pipeline moves the plan with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.jobs.job import SETTLED, Job
from engine.jobs.kind import EffectReplay, JobKind, stage_name
from pipelines.registry import JOB_KINDS


@dataclass(frozen=True)
class ReplayPlan:
    """``action`` is one of ``charge``, ``resume_after_charge``, ``notify_only`` (for the payment kind; in general
    named after the kind's effect stage and last stage), ``resume``, ``nothing``, ``unknown`` (no job row: the
    worker creates it on first sight), ``poison`` (cannot be replayed)."""

    action: str
    detail: str


def plan_for(job: Job | None, *, poison: bool = False, kinds: Iterable[JobKind] = JOB_KINDS) -> ReplayPlan:
    """What replaying the message of ``job`` would do (``kinds``: the engine's job kinds)."""
    if poison:
        return ReplayPlan("poison", "the body is not a valid envelope: a replay would dead-letter it again; purge it")
    if job is None:
        return ReplayPlan("unknown", "no job row: the worker creates the job on first sight and runs every stage")
    if job.status in SETTLED:
        return ReplayPlan("nothing", f"the job is already {job.status}; the DLQ copy is removed, not re-sent")
    kind = next((k for k in kinds if k.name == job.kind), None)
    if kind is None or kind.replay is None:
        after = f"after stage {job.stage}" if job.stage else "from its first stage"
        return ReplayPlan("resume", f"the {job.kind} pipeline resumes {after}")
    return _around_effect(job, kind.stage_names, kind.replay)


def _around_effect(job: Job, names: tuple[str, ...], replay: EffectReplay) -> ReplayPlan:
    effect = stage_name(replay.stage)
    effect_at, last = names.index(effect), len(names) - 1
    done = -1 if job.stage is None else names.index(job.stage) if job.stage in names else last
    if done < effect_at:
        detail = replay.before
        progress = job.stage_results.get(replay.progress_key) or {}
        if progress.get(replay.ref_key) or progress.get("uncertain"):
            detail += replay.reached
        return ReplayPlan(effect, detail)
    if done == last - 1 and done > effect_at:
        return ReplayPlan(f"{names[last]}_only", replay.last_left)
    if done < last:
        ref = (job.stage_results.get(effect) or {}).get(replay.ref_key)
        return ReplayPlan(f"resume_after_{effect}", replay.after.format(ref=ref))
    return ReplayPlan("nothing", f"every stage done (last: {job.stage})")
