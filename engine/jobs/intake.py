"""The job a delivered message is about: its row, or a new one for a message an upstream system enqueued itself.

The ingest records every job before it sends the message, so a message normally names an existing job.  An
upstream system may also put an envelope on a work queue directly; the worker then validates its data with the
kind's request model and creates the job on first sight, under the envelope's idempotency scope, so a redelivered
copy finds the same job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa

from engine.broker.envelope import Envelope
from engine.db import jobs as job_repo
from engine.jobs.job import Job
from engine.jobs.kind import JobKind

log = logging.getLogger(__name__)


def job_for(db: sa.Engine, envelope: Envelope, kind_of: Callable[[str], JobKind]) -> Job:
    """The job ``envelope`` carries, created when it has no row yet (``kind_of`` names the envelope's kind).

    Raises :class:`engine.errors.PoisonError` when the envelope's data is not a valid request for its kind (and
    what ``kind_of`` raises for a kind it does not know).
    """
    if envelope.job_id:
        with db.connect() as conn:
            try:
                return job_repo.get(conn, envelope.job_id)
            except job_repo.JobNotFound:
                pass
    kind = kind_of(envelope.kind)
    data = kind.validate(envelope.data)
    customer = data.get("customer", {}).get("id") if isinstance(data.get("customer"), dict) else None
    draft = Job.accepted(
        job_id=envelope.job_id,
        kind=kind.name,
        queue=kind.queue.name(""),
        idempotency_scope=envelope.idempotency_scope,
        group_id=envelope.group_id or customer or envelope.idempotency_scope,
        request=data,
        customer_id=customer,
        correlation_id=envelope.correlation_id,
    )
    with db.begin() as conn:
        job = job_repo.insert_if_absent(conn, draft)
    log.info("job %s created on first sight of message %s", job.id, envelope.message_id, extra={"job_id": job.id})
    return job
