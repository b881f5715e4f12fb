"""What a worker process does besides running Dramatiq's threads: the queue check at start, the liveness heartbeat
and the outbox relay.

The heartbeat and relay need optional parts (Redis, the database); a part that is not there leaves its helper off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from config.settings import Settings
from engine.broker.dead_letters import DeadLetterSink, LoggingDeadLetterSink
from engine.broker.drift import check_queues, unsafe_queues
from engine.broker.queues import QueueCatalogue
from engine.runtime.container import Container

log = logging.getLogger(__name__)

#: How long the worker's outbox relay waits between rounds when it has no backlog.  What it relays is mostly
#: notifications (``job.*`` events written by final checkpoints; the ingest relays its own dispatches as they
#: commit), so a second of delay is invisible to a merchant, and one round then carries every event committed
#: meanwhile: one commit and a full ``SendMessageBatch`` instead of one each per event when jobs finish one by one
#: (a slow Stripe).  At 0.2 s the relay's rounds were 0.4 commits and 0.4 SQS calls per payment at +250 ms.
RELAY_INTERVAL_SECONDS = 1.0


def dead_letter_sink(c: Container) -> DeadLetterSink:
    """The database sink when a database is reachable by configuration, else the log."""
    if c.endpoints.database_url:
        from engine.db.dead_letters import SqlDeadLetterSink

        return SqlDeadLetterSink(c.db)
    log.warning("no database configured: dead-letter reasons go to the log only")
    return LoggingDeadLetterSink()


def safe_queues(sqs: Any, declared: set[str], settings: Settings, catalogue: QueueCatalogue) -> set[str]:
    """The queues of ``declared`` (Dramatiq queue names) that this worker may consume.

    Runs the drift check (:mod:`engine.broker.drift`) on their SQS queues: each difference is logged (an error
    when unsafe, else a warning), and a queue with an unsafe difference (missing, no DLQ or redrive, content-based
    deduplication on) is left out, so the worker never takes messages it could lose or run twice.

    Raises:
        botocore.exceptions.ClientError: SQS refused a call other than "queue does not exist".
    """
    by_base = {catalogue.resolve(q).spec.base: catalogue.resolve(q).spec for q in declared}
    specs = tuple(by_base[b] for b in sorted(by_base))
    prefix = settings.queue_prefix
    differences = check_queues(sqs, prefix, specs, visibility_timeout=settings.sqs.visibility_timeout_seconds)
    for d in differences:
        (log.error if d.unsafe else log.warning)("queue check: %s", d.describe())
    refused = unsafe_queues(differences, prefix, specs)
    if refused:
        log.error("refusing to consume %s (see `payments queues check`)", ", ".join(sorted(refused)))
    return {q for q in declared if catalogue.resolve(q).spec.base not in refused}


def gate_stripe_queues(c: Container, broker: Any) -> list[str]:
    """Gate the queues of the kinds whose stages call Stripe with this process's Stripe circuit breaker, so that
    while it is not closed the worker takes none of their work and gives back what it has not started.  Half-open,
    the gateway probes Stripe itself (:meth:`engine.adapters.stripe_gateway.StripeGateway.work_gate`).  Returns the
    gated queues (none when Stripe is not configured)."""
    gateway = c.stripe_or_none
    if gateway is None:
        return []
    gated = [kind.queue.base for kind in c.kinds if c.kind_uses(kind, "stripe", "stripe_or_none")]
    for queue in gated:
        broker.set_gate(queue, gateway.work_gate)
    return gated


@dataclass
class Sidecars:
    stoppers: list[Any] = field(default_factory=list)

    @classmethod
    def start(cls, c: Container, broker: Any) -> Sidecars:
        sidecars = cls()
        if c.endpoints.redis_url:
            from engine.runtime.liveness import WorkerHeartbeat

            beat = WorkerHeartbeat(c.redis, c.redis_prefix)
            beat.start()
            sidecars.stoppers.append(beat.stop)
        if c.endpoints.database_url:
            from engine.ops.outbox_relay import OutboxRelay

            relay = OutboxRelay(c.db, broker, interval=RELAY_INTERVAL_SECONDS)
            relay.start()
            sidecars.stoppers.append(relay.stop)
        return sidecars

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # stopping must go on for the others
                log.exception("stopping a worker sidecar failed")
