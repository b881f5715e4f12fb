"""Purging dead letters: every message is archived in the database (body, SQS attributes, reason row) before it
is deleted from its DLQ.  Jobs stay ``dead_lettered``.

SQS's PurgeQueue is not used: it cannot archive first, and it would take messages the filters exclude.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.audit import hooks as audit
from engine.ops.dlq.archive import archive
from engine.ops.dlq.entries import DlqFilter
from engine.ops.dlq.messages import delete, dlq_url, iter_specs
from engine.ops.dlq.walk import DlqWalk
from engine.runtime.container import Container

log = logging.getLogger(__name__)

HOLD_SECONDS = 30


@dataclass(frozen=True)
class PurgeResult:
    """One archived and deleted message."""

    queue: str
    message_id: str
    job_id: str | None
    kind: str | None
    error_class: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "message_id": self.message_id,
            "queue": self.queue,
            "kind": self.kind,
            "error_class": self.error_class,
            "archived": True,
        }


def purge(
    c: Container,
    queue: str,
    flt: DlqFilter,
    *,
    on_result: Callable[[PurgeResult], None] | None = None,
    hold_seconds: int = HOLD_SECONDS,
) -> list[PurgeResult]:
    """Archive then delete every message of ``queue``'s DLQ that ``flt`` matches; return them.

    Each message is archived in its own committed transaction before its delete, so an interruption leaves
    messages either still in the DLQ or archived (a message archived but not deleted is archived once only).

    Raises:
        KeyError: ``queue`` is not a catalogue queue.
        botocore.exceptions.ClientError, sqlalchemy.exc.SQLAlchemyError: a dependency failed.
    """
    prefix = c.settings.queue_prefix
    results: list[PurgeResult] = []
    for spec in iter_specs(queue, prefix):
        url = dlq_url(c.sqs, spec, prefix)
        if url is None:
            continue
        with DlqWalk(c, spec, url, hold_seconds) as walk:
            for entry in walk.matching(flt):
                with c.db.begin() as conn:
                    archive(conn, entry, "purge")
                    audit.dlq_moved(conn, entry=entry, action="dlq.purge", outcome="archived")
                delete(c.sqs, entry.message)
                walk.finished(entry)
                result = PurgeResult(
                    entry.source_queue,
                    entry.message.message_id,
                    entry.job_id,
                    entry.kind,
                    (entry.reason or {}).get("error_class"),
                )
                log.info("purged DLQ message %s (job %s), archived", result.message_id, result.job_id)
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return results
