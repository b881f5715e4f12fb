"""A DLQ message joined with its reason row and its job, and the filters ``ls``, ``replay`` and ``purge`` share.

The reason row (``dead_letters``) is found by the message's own MessageId (SQS redrive keeps it), else by the
MessageId it had on its work queue (engine-sent DLQ messages carry dedup id ``dlq:{message_id}``), else by the
job's newest row not yet replayed or purged.  A message with no row yet (the periodic sweep has not seen it) is
listed with error class ``Unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.broker.dead_letters import scrub_text
from engine.broker.envelope import body_object, parse_body
from engine.broker.errors import PoisonMessage
from engine.db import jobs as job_repo
from engine.db.tables import dead_letters, jobs
from engine.domain.timestamps import iso_utc
from engine.jobs.job import Job
from engine.ops.dlq.messages import DlqMessage


@dataclass(frozen=True)
class DlqEntry:
    """One DLQ message with what the database knows about it."""

    message: DlqMessage
    envelope: dict[str, Any] | None
    reason: dict[str, Any] | None
    job: Job | None

    @property
    def job_id(self) -> str | None:
        if self.job is not None:
            return self.job.id
        value = (self.reason or {}).get("job_id") or (self.envelope or {}).get("job_id")
        return str(value) if value else None

    @property
    def kind(self) -> str | None:
        value = (self.reason or {}).get("kind") or (self.envelope or {}).get("kind") or (self.job and self.job.kind)
        return str(value) if value else None

    @property
    def source_queue(self) -> str:
        """The work queue the message came from (prefixed SQS name)."""
        queue = (self.reason or {}).get("queue")
        return str(queue) if queue else self.message.dlq_name.replace("-dlq", "")

    @property
    def failed_at(self) -> datetime | None:
        """When it was last recorded as failed (else when it was sent to the DLQ)."""
        value = (self.reason or {}).get("last_failed_at")
        return value if isinstance(value, datetime) else self.message.sent_at

    def listing(self) -> dict[str, Any]:
        """The ``dlq ls --json`` object (the fields of ``docs/cli.md``, then extras)."""
        r = self.reason or {}
        stage = r.get("stage") or (self.job.stage if self.job else None)
        return {
            "job_id": self.job_id,
            "message_id": self.message.message_id,
            "queue": self.source_queue,
            "kind": self.kind,
            "stage": stage,
            "attempts": r.get("attempts", self.message.receive_count),
            "error": {
                "class": r.get("error_class", "Unknown"),
                "message": scrub_text(
                    r.get("error_message", "no reason recorded yet (the DLQ sweep records one within a minute)")
                ),
            },
            "first_failed_at": _iso(r.get("first_failed_at")),
            "last_failed_at": _iso(r.get("last_failed_at")),
            "dlq": self.message.dlq_name,
            "group_id": self.message.group_id or r.get("group_id"),
            "source": r.get("source"),
            "job_status": self.job.status if self.job else None,
        }


@dataclass(frozen=True)
class DlqFilter:
    """Which DLQ messages an operation applies to.  Every criterion given must hold.

    ``ids``: job ids or SQS message ids (the DLQ's, or the one the message had on its work queue).
    ``since``: failed at or after this time.  ``error``: case-insensitive substring of the error class or message.
    """

    kind: str | None = None
    since: datetime | None = None
    error: str | None = None
    ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def empty(self) -> bool:
        return not (self.kind or self.since or self.error or self.ids)

    def matches(self, entry: DlqEntry) -> bool:
        if self.ids:
            names = {entry.job_id, entry.message.message_id, entry.message.original_message_id}
            names.add((entry.reason or {}).get("message_id"))
            if not self.ids & {n for n in names if n}:
                return False
        if self.kind and entry.kind != self.kind:
            return False
        if self.since is not None:
            at = entry.failed_at
            if at is None or at < self.since:
                return False
        if self.error:
            r = entry.reason or {}
            text = f"{r.get('error_class', 'Unknown')} {r.get('error_message', '')}".lower()
            if self.error.lower() not in text:
                return False
        return True


_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``--since``: an ISO 8601 time (UTC when it has no offset) or a duration back from now (``30m``, ``2h``,
    ``7d``).

    Raises:
        ValueError: neither form.
    """
    match = _RELATIVE.match(value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_poison(body: str) -> bool:
    """True when ``body`` is not a valid envelope: replaying it would only dead-letter it again."""
    try:
        parse_body(body)
    except PoisonMessage:
        return True
    return False


def join(conn: sa.Connection, messages: Sequence[DlqMessage]) -> list[DlqEntry]:
    """Each message with its reason row and job (one query each, whatever the number of messages)."""
    envelopes = [body_object(m.body) for m in messages]
    ids = {m.message_id for m in messages} | {m.original_message_id for m in messages if m.original_message_id}
    job_ids = {str(e["job_id"]) for e in envelopes if e and isinstance(e.get("job_id"), str)}
    scopes = {str(e["idempotency_scope"]) for e in envelopes if e and isinstance(e.get("idempotency_scope"), str)}
    rows = (
        conn.execute(
            sa.select(dead_letters)
            .where(sa.or_(dead_letters.c.message_id.in_(ids), dead_letters.c.job_id.in_(job_ids)))
            .where(dead_letters.c.purged_at.is_(None))
            .order_by(dead_letters.c.last_failed_at.desc())
        )
        .mappings()
        .all()
    )
    by_message = {r["message_id"]: dict(r) for r in rows}
    by_job: dict[str, dict[str, Any]] = {}
    for r in rows:  # newest first: keep the newest row not replayed yet per job
        if r["job_id"] and r["replayed_at"] is None:
            by_job.setdefault(r["job_id"], dict(r))
    job_rows = (
        conn.execute(sa.select(jobs).where(sa.or_(jobs.c.id.in_(job_ids), jobs.c.idempotency_scope.in_(scopes))))
        .mappings()
        .all()
    )
    by_id = {r["id"]: job_repo.row_to_job(r) for r in job_rows}
    by_scope = {j.idempotency_scope: j for j in by_id.values()}
    out: list[DlqEntry] = []
    for m, env in zip(messages, envelopes, strict=True):
        reason = by_message.get(m.message_id) or (by_message.get(m.original_message_id or "") or None)
        job_id = str(env.get("job_id")) if env and env.get("job_id") else None
        if reason is None and job_id:
            reason = by_job.get(job_id)
        job = by_id.get(job_id or "") or (by_scope.get(str(env.get("idempotency_scope"))) if env else None)
        if job is None and reason and reason.get("job_id"):
            job = by_id.get(reason["job_id"])
        out.append(DlqEntry(message=m, envelope=env, reason=reason, job=job))
    return out


def select(entries: Iterable[DlqEntry], flt: DlqFilter) -> list[DlqEntry]:
    """The entries ``flt`` matches, oldest failure first."""
    chosen = [e for e in entries if flt.matches(e)]
    return sorted(chosen, key=lambda e: e.failed_at or datetime.min.replace(tzinfo=UTC))


def _iso(value: Any) -> str | None:
    return iso_utc(value) if isinstance(value, datetime) else None
