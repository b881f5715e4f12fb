"""Replaying dead letters: each message goes back to its source queue, its job back to ``processing``.

How a message moves (FIFO queues, and standard queues when a filter is given or StartMessageMoveTask is missing):

1. receive it from the DLQ (held invisible for :data:`HOLD_SECONDS`);
2. in one database transaction: lock the job, take its next enqueue generation N, set it ``processing``, send the
   message to the source queue (same body, same MessageGroupId, MessageDeduplicationId ``sha256(scope):replay:N``)
   — if SQS refuses the send, the transaction rolls back and the message stays in the DLQ;
3. after the commit, delete it from the DLQ.

Nothing is lost if the replay stops anywhere: before the send the message is still in the DLQ; between the send
and the delete it is in both queues, and the copy a later replay sends again runs into the job's recovery points
(a settled job is skipped, a charge is looked up before it is made).  Messages held but not moved are released
(visibility 0) when the replay ends, however it ends.

A standard DLQ replayed whole (no filter) uses SQS's own StartMessageMoveTask where the endpoint has it (moto has
not).  FIFO queues never do: a move task keeps each message's old deduplication id and cannot mark the jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.audit import hooks as audit
from engine.broker.envelope import parse_body
from engine.broker.ids import deduplication_id, message_group_id
from engine.broker.queues import QueueSpec
from engine.db import jobs as job_repo
from engine.db.tables import dead_letters, jobs
from engine.jobs.job import SETTLED
from engine.ops.dlq.archive import archive
from engine.ops.dlq.entries import DlqEntry, DlqFilter, is_poison, join, select
from engine.ops.dlq.messages import delete, dlq_url, iter_specs, peek
from engine.ops.dlq.plan import plan_for
from engine.ops.dlq.walk import DlqWalk
from engine.runtime.container import Container

log = logging.getLogger(__name__)

#: How long a message taken for replay stays invisible in the DLQ: a replay killed while holding messages gives
#: them back after this long.
HOLD_SECONDS = 30


@dataclass(frozen=True)
class ReplayResult:
    """What happened to one DLQ message.

    ``outcome``: ``replayed`` (sent back, deleted from the DLQ), ``removed`` (its job had already settled: archived
    and deleted), ``skipped`` (left in the DLQ: poison), ``planned`` (``--dry-run``), ``move_task`` (a whole
    standard DLQ handed to StartMessageMoveTask; ``message_id`` is then the task handle).
    """

    queue: str
    message_id: str
    job_id: str | None
    action: str
    outcome: str
    detail: str
    dedup_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "message_id": self.message_id,
            "queue": self.queue,
            "action": self.action,
            "outcome": self.outcome,
            "detail": self.detail,
            "dedup_id": self.dedup_id,
        }


class RateLimiter:
    """At most ``per_second`` calls of :meth:`wait` return per second (``None``: no limit)."""

    def __init__(self, per_second: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock = clock
        self._next = 0.0

    def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        if now < self._next:
            time.sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


def plan(c: Container, flt: DlqFilter, queue: str | None = None) -> list[ReplayResult]:
    """``--dry-run``: per matching DLQ message, what a replay would do.  Moves nothing.

    Raises:
        KeyError: ``queue`` is not a catalogue queue.
        botocore.exceptions.ClientError, sqlalchemy.exc.SQLAlchemyError: a dependency is down.
    """
    prefix = c.settings.queue_prefix
    messages = peek(c.sqs, prefix, list(iter_specs(queue, prefix)))
    with c.db.connect() as conn:
        entries = select(join(conn, messages), flt)
    out = []
    for e in entries:
        p = plan_for(e.job, poison=is_poison(e.message.body))
        out.append(ReplayResult(e.source_queue, e.message.message_id, e.job_id, p.action, "planned", p.detail))
    return out


def replay(
    c: Container,
    flt: DlqFilter,
    queue: str | None = None,
    *,
    rate: float | None = None,
    on_result: Callable[[ReplayResult], None] | None = None,
    between_send_and_delete: Callable[[DlqEntry], None] | None = None,
    hold_seconds: int = HOLD_SECONDS,
) -> list[ReplayResult]:
    """Move the matching DLQ messages back to their source queues (see the module docstring); return what
    happened to each.  ``rate``: at most this many messages a second.  ``on_result`` is called after each message
    (progress).  ``between_send_and_delete`` is a test seam: it runs after a message was sent and committed and
    before it is deleted from the DLQ.

    Raises:
        KeyError: ``queue`` is not a catalogue queue.
        botocore.exceptions.ClientError, sqlalchemy.exc.SQLAlchemyError: a dependency failed; what was replayed
            until then stays replayed, the message being moved is left in the DLQ (or in both queues, harmless).
    """
    prefix = c.settings.queue_prefix
    limiter = RateLimiter(rate)
    results: list[ReplayResult] = []

    def report(result: ReplayResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    for spec in iter_specs(queue, prefix):
        url = dlq_url(c.sqs, spec, prefix)
        if url is None:
            continue
        if not spec.fifo and flt.empty:
            handle = _start_move_task(c.sqs, url, spec, prefix, rate)
            if handle is not None:
                report(
                    ReplayResult(spec.name(prefix), handle, None, "move", "move_task", "StartMessageMoveTask started")
                )
                continue
        _replay_queue(c, spec, url, flt, limiter, report, between_send_and_delete, hold_seconds)
    return results


def _replay_queue(
    c: Container,
    spec: QueueSpec,
    url: str,
    flt: DlqFilter,
    limiter: RateLimiter,
    report: Callable[[ReplayResult], None],
    between_send_and_delete: Callable[[DlqEntry], None] | None,
    hold_seconds: int,
) -> None:
    prefix = c.settings.queue_prefix
    source_url = str(c.sqs.get_queue_url(QueueName=spec.name(prefix))["QueueUrl"])
    # Held (and released at the end) until it is gone from the DLQ: an interruption anywhere in _move_one leaves
    # it visible in the DLQ again.
    with DlqWalk(c, spec, url, hold_seconds) as walk:
        for entry in walk.matching(flt):
            limiter.wait()
            result = _move_one(c, entry, source_url, between_send_and_delete)
            if result.outcome in ("replayed", "removed"):
                walk.finished(entry)
            report(result)


def _move_one(
    c: Container, entry: DlqEntry, source_url: str, between_send_and_delete: Callable[[DlqEntry], None] | None
) -> ReplayResult:
    m = entry.message
    queue = entry.source_queue
    if is_poison(m.body):
        p = plan_for(None, poison=True)
        return ReplayResult(queue, m.message_id, entry.job_id, p.action, "skipped", p.detail)
    envelope = parse_body(m.body)
    with c.db.begin() as conn:
        job = job_repo.get(conn, entry.job.id, for_update=True) if entry.job else None
        if job is not None and job.status in SETTLED:
            archive(conn, entry, "settled")
            removed = True
        else:
            removed = False
            chosen = plan_for(job)
            generation = _next_generation(conn, job.id if job else None, m.body)
            params: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": m.body}
            dedup = None
            if m.spec.fifo:
                group = m.group_id or message_group_id(job.group_id if job else (envelope.group_id or "dead-letter"))
                dedup = deduplication_id(envelope.idempotency_scope, f":replay:{generation}")
                params.update(MessageGroupId=group, MessageDeduplicationId=dedup)
            # Sent inside the transaction: if SQS refuses, the job is left as it was and the message stays put.
            c.sqs.send_message(**params)
            if entry.reason and entry.reason.get("id") is not None:
                conn.execute(
                    dead_letters.update()
                    .where(dead_letters.c.id == entry.reason["id"])
                    .values(replayed_at=sa.func.now())
                )
        audit.dlq_moved(conn, entry=entry, action="dlq.replay", outcome="removed" if removed else "replayed")
    if removed:
        delete(c.sqs, m)
        assert job is not None
        return ReplayResult(
            queue, m.message_id, job.id, "nothing", "removed", f"job already {job.status}: archived, not re-sent"
        )
    if between_send_and_delete is not None:
        between_send_and_delete(entry)
    delete(c.sqs, m)
    log.info("replayed DLQ message %s of job %s (%s)", m.message_id, entry.job_id, chosen.action)
    return ReplayResult(queue, m.message_id, entry.job_id, chosen.action, "replayed", chosen.detail, dedup)


def _next_generation(conn: sa.Connection, job_id: str | None, body: str) -> int:
    """Take the job's next enqueue generation (and set it ``processing``); for a message whose job was never
    created, one more than the replays of the same body so far."""
    if job_id is not None:
        return int(
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    enqueue_generation=jobs.c.enqueue_generation + 1,
                    failed_attempts=0,  # a replayed job gets its attempts anew (engine/jobs/attempts.py)
                    status="processing",
                    error=None,
                    updated_at=sa.func.now(),
                )
                .returning(jobs.c.enqueue_generation)
            ).scalar_one()
        )
    done = conn.execute(
        sa.select(sa.func.count())
        .select_from(dead_letters)
        .where(dead_letters.c.body == body, dead_letters.c.replayed_at.is_not(None))
    ).scalar_one()
    return int(done) + 1


def _start_move_task(sqs: Any, url: str, spec: QueueSpec, prefix: str, rate: float | None) -> str | None:
    """Start SQS's StartMessageMoveTask from a standard DLQ to its source queue; the task handle, or ``None`` when
    the endpoint does not offer it (moto) or refuses — the caller then moves messages itself."""
    try:
        source = sqs.get_queue_url(QueueName=spec.name(prefix))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        dest = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        params: dict[str, Any] = {"SourceArn": arn, "DestinationArn": dest}
        if rate:
            params["MaxNumberOfMessagesPerSecond"] = max(1, int(rate))
        answer = sqs.start_message_move_task(**params)
    except Exception as exc:  # not offered (moto), or refused: the receive/send/delete path is always safe
        log.info("StartMessageMoveTask unavailable on %s (%s); moving messages one by one", url, exc)
        return None
    return str(answer.get("TaskHandle", "started"))
