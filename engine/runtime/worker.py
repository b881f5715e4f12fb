"""What runs beside Dramatiq's threads in a worker process: liveness heartbeat and the outbox relay.

Both need optional parts (Redis, the database); a part that is not there simply leaves its helper off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from engine.broker.dead_letters import DeadLetterSink, LoggingDeadLetterSink
from engine.runtime.container import Container

log = logging.getLogger(__name__)


def dead_letter_sink(c: Container) -> DeadLetterSink:
    """The database sink when a database is reachable by configuration, else the log."""
    if c.endpoints.database_url:
        from engine.db.dead_letters import SqlDeadLetterSink

        return SqlDeadLetterSink(c.db)
    log.warning("no database configured: dead-letter reasons go to the log only")
    return LoggingDeadLetterSink()


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

            relay = OutboxRelay(c.db, broker)
            relay.start()
            sidecars.stoppers.append(relay.stop)
        return sidecars

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # stopping must go on for the others
                log.exception("stopping a worker sidecar failed")
