"""Sending a job's message again (review approval, reconciler, released refund holds).

One place builds the envelope from the stored job, so every re-send carries the same scope, group and correlation
id as the first send; only the dedup suffix (``:review:N``, ``:reconcile:N``) tells the copies apart.
"""

from __future__ import annotations

from typing import Any

from engine.broker.envelope import Envelope, to_message
from engine.broker.queues import queue_base
from engine.jobs.job import Job


def send_again(broker: Any, job: Job, suffix: str) -> None:
    """Enqueue ``job``'s message once more with MessageDeduplicationId suffix ``suffix``.

    The message goes to the queue the job was recorded on.  Call it inside the transaction that records why (the
    bumped ``enqueue_generation``): if SQS refuses, that rolls back too.  Raises what the broker raises.
    """
    envelope = Envelope.new(
        kind=job.kind,
        data=job.request,
        idempotency_scope=job.idempotency_scope,
        group_id=job.group_id,
        job_id=job.id,
        correlation_id=job.correlation_id,
    )
    broker.enqueue(to_message(envelope, queue_base(job.queue), {"dedup_suffix": suffix}))
