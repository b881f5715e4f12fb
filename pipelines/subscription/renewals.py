"""The scheduler's ``subscription-renewals`` task: ends, renews and retries subscriptions due at ``now``.

One pass, as if it were ``now`` (``payments scheduler --once --now <ISO>`` simulates time; real time otherwise):

1. a subscription set to cancel at period end whose period has ended is ``canceled`` (with its outbox event);
2. an ``active``/``trialing`` subscription whose period has ended gets one renewal job for every period that has
   begun by ``now`` and is not billed yet (a scheduler stopped for several periods catches up in one pass), oldest
   first, at most :data:`CATCH_UP` periods per subscription and pass (the rest the next pass);
3. a ``past_due`` subscription whose next dunning retry is due gets one job for that attempt.

"One" is enforced by the database, not by timing: each job goes with a ``subscription_renewals`` row unique on
(subscription, period start, attempt), inserted in the same transaction as the job row.  Two schedulers running at
once, or one restarted, collide on that constraint and the loser enqueues nothing; the job's idempotency scope
``renewal:{subscription}:{period start}:a{attempt}`` is also its SQS deduplication id.  A renewal job is processed
by the worker like any other subscription job (``action: renew``); until it is, the subscription stays due and
later passes find the row and skip it.  A job committed but not enqueued (SQS down) is re-sent by the reconciler.

Catch-up jobs run in order: they go to the customer's FIFO message group one after the other, and each renewal
moves the subscription one period on, so the next one finds its period due.  A renewal that finds its period not
due (an earlier period of the catch-up was declined and is being dunned, or a job sent late by the reconciler ran
behind a later one) charges nothing and gives its ``subscription_renewals`` row back in the transaction that fails
it (:func:`release`), so a later pass enqueues that period again once it is due; the new job's idempotency scope
then carries the claim's id (``…:a1:c{id}``), since the failed job keeps the plain one.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.broker.envelope import Envelope, to_message
from engine.broker.queues import QueueCatalogue, QueueSpec
from engine.db import jobs as job_repo
from engine.db.tables_subscriptions import subscription_renewals, subscriptions
from engine.domain.merchant import DEFAULT_MERCHANT
from engine.domain.plans import PlanCatalogue, UnknownPlan
from engine.domain.timestamps import iso_utc
from engine.jobs.job import Job
from pipelines.subscription import repo
from pipelines.subscription.billing import add_intervals

log = logging.getLogger(__name__)
#: Subscriptions looked at per pass and kind of work (the rest wait for the next pass).
BATCH = 500
#: Missed periods enqueued per subscription and pass: a year of a monthly plan; a scheduler stopped for longer
#: catches up over several passes (one a minute), and one subscription cannot flood its customer's queue.
CATCH_UP = 12


def renewal_scope(subscription_id: str, period_start: datetime, attempt: int) -> str:
    """The idempotency scope (and SQS dedup source) of one renewal attempt of one period."""
    return f"renewal:{subscription_id}:{iso_utc(period_start)}:a{attempt}"


def cancel_ended(db: sa.Engine, now: datetime) -> int:
    """Cancel subscriptions set to cancel at period end whose period ended by ``now``; returns how many."""
    with db.begin() as conn:
        rows = (
            conn.execute(
                subscriptions.update()
                .where(
                    subscriptions.c.cancel_at_period_end.is_(True),
                    subscriptions.c.status.in_(["active", "trialing", "past_due"]),
                    subscriptions.c.current_period_end <= now,
                )
                .values(
                    status="canceled",
                    canceled_at=subscriptions.c.current_period_end,
                    next_retry_at=None,
                    version=subscriptions.c.version + 1,
                    updated_at=sa.func.now(),
                )
                .returning(subscriptions)
            )
            .mappings()
            .all()
        )
        for row in rows:
            repo.notify(conn, dict(row), "canceled", f"subscription:{row['id']}:canceled", None)
    return len(rows)


def missed_periods(row: dict[str, Any], interval: str, now: datetime, limit: int = CATCH_UP) -> list[datetime]:
    """The starts of the periods of an ``active``/``trialing`` subscription ``row`` that began by ``now`` and are
    not billed yet, oldest first, at most ``limit``: the first is ``current_period_end``, the next ones follow the
    billing-cycle anchor as the renewal computes them (a trial's end becomes the anchor of the first paid period).
    Raises :class:`ValueError` for an unknown ``interval``.
    """
    first: datetime = row["current_period_end"]
    if first > now or limit < 1:
        return []
    if row["status"] == "trialing":
        anchor, index = first, 0
    else:
        anchor, index = row["billing_cycle_anchor"], row["period_index"] + 1
    if anchor is None or add_intervals(anchor, interval, index) != first:
        return [first]  # a row whose anchor does not lead to its period end: one period at a time, as before
    starts = [first]
    while len(starts) < limit:
        start = add_intervals(anchor, interval, index + len(starts))
        if start > now:
            break
        starts.append(start)
    return starts


def release(conn: sa.Connection, job_id: str) -> None:
    """Give back the ``subscription_renewals`` row of renewal job ``job_id`` (it charged nothing and ends now), so
    a later pass can enqueue that period again; in the caller's transaction."""
    conn.execute(subscription_renewals.delete().where(subscription_renewals.c.job_id == job_id))


def _due(db: sa.Engine, now: datetime) -> list[tuple[dict[str, Any], datetime, int]]:
    with db.connect() as conn:
        renewals = (
            conn.execute(
                sa.select(subscriptions)
                .where(
                    subscriptions.c.status.in_(["active", "trialing"]),
                    subscriptions.c.cancel_at_period_end.is_(False),
                    subscriptions.c.current_period_end <= now,
                )
                .order_by(subscriptions.c.current_period_end)
                .limit(BATCH)
            )
            .mappings()
            .all()
        )
        retries = (
            conn.execute(
                sa.select(subscriptions)
                .where(subscriptions.c.status == "past_due", subscriptions.c.next_retry_at <= now)
                .order_by(subscriptions.c.next_retry_at)
                .limit(BATCH)
            )
            .mappings()
            .all()
        )
    due = [(dict(r), r["current_period_end"], 1) for r in renewals]
    due += [(dict(r), r["current_period_start"], r["dunning_attempt"] + 1) for r in retries]
    return due


def enqueue_renewal(
    db: sa.Engine,
    broker: Any,
    queue: QueueSpec,
    row: dict[str, Any],
    period_start: datetime,
    attempt: int,
    now: datetime,
) -> bool | None:
    """Record and enqueue (on ``queue``) the job of one renewal attempt.  None when another pass already did;
    else whether it was sent (False: recorded, SQS refused; the reconciler re-sends it).

    Raises whatever the database raises; an SQS failure is logged and left to the reconciler (the job is durable).
    """
    scope = renewal_scope(row["id"], period_start, attempt)
    data = {
        "action": "renew",
        "subscription": row["id"],
        "period_start": iso_utc(period_start),
        "attempt": attempt,
        "billed_at": iso_utc(now),
    }
    public = {
        "subscription": repo.job_block(row),
        "renewal": {"period_start": iso_utc(period_start), "attempt": attempt},
    }
    draft = Job.accepted(
        kind="subscription",
        queue=queue.name(""),
        idempotency_scope=scope,
        group_id=row["customer_id"],
        request=data,
        customer_id=row["customer_id"],
        public=public,
        # The subscription's merchant owns its renewals (a row read before migration 0015 has the default one).
        merchant_id=row.get("merchant_id", DEFAULT_MERCHANT),
    )
    with db.begin() as conn:
        claimed = conn.execute(
            insert(subscription_renewals)
            .values(subscription_id=row["id"], period_start=period_start, attempt=attempt, job_id=draft.id)
            .on_conflict_do_nothing(constraint="subscription_renewals_period_key")
            .returning(subscription_renewals.c.id)
        ).scalar()
        if claimed is None:
            return None
        if job_repo.get_by_scope(conn, scope) is not None:
            # The period was claimed before and given back (release): the failed job keeps the plain scope.
            scope = f"{scope}:c{claimed}"
            draft = dataclasses.replace(draft, idempotency_scope=scope)
        job = job_repo.insert(conn, draft)
    envelope = Envelope.new(
        kind="subscription", data=data, idempotency_scope=scope, group_id=row["customer_id"], job_id=job.id
    )
    try:
        broker.enqueue(to_message(envelope, queue.base))
    except Exception as exc:  # the job row is committed: the reconciler re-sends it
        log.warning("renewal job %s recorded but not enqueued: %s", job.id, exc, extra={"job_id": job.id})
        return False
    return True


def _periods(
    plans: PlanCatalogue, row: dict[str, Any], period_start: datetime, attempt: int, now: datetime
) -> list[datetime]:
    """The periods to enqueue for one due subscription: the missed ones for a renewal, the one for a retry."""
    if attempt > 1:
        return [period_start]
    try:
        interval = plans.get(row["plan"]).interval
    except UnknownPlan:
        return [period_start]  # the renewal job fails it with plan_unknown
    return missed_periods(row, interval, now)


def run(db: sa.Engine, broker: Any, queues: QueueCatalogue, plans: PlanCatalogue, now: datetime) -> str:
    """One pass of the task at ``now`` (a scheduler task); a one-line report."""
    queue = queues.for_kind("subscription")
    assert queue is not None
    canceled = cancel_ended(db, now)
    renewals = retries = 0
    for row, period_start, attempt in _due(db, now):
        for start in _periods(plans, row, period_start, attempt, now):
            sent = enqueue_renewal(db, broker, queue, row, start, attempt, now)
            if sent is not None:
                if attempt == 1:
                    renewals += 1
                else:
                    retries += 1
            if not sent:
                # Claimed by another pass (which enqueues the periods after it), or recorded but not sent: the later
                # periods would reach the queue before it, so they wait for a later pass.
                break
    return f"{renewals} renewal(s) and {retries} dunning retry(ies) enqueued, {canceled} canceled at period end"
