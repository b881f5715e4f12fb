"""``payments dlq show ID``: everything about one dead letter — the message, its reasons, its job and stage
results, and what a replay would do.  ``ID`` is a job id or an SQS message id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.broker.dead_letters import scrub_text
from engine.broker.envelope import safe_body
from engine.db import jobs as job_repo
from engine.db.tables import dead_letters
from engine.domain.timestamps import iso_utc
from engine.errors import NotFoundError
from engine.ops.dlq.entries import DlqFilter, is_poison, join, select
from engine.ops.dlq.messages import peek
from engine.ops.dlq.plan import plan_for
from engine.runtime.container import Container


class DeadLetterNotFound(NotFoundError):
    """Neither a DLQ message, a reason row nor a job has this id."""


def describe(c: Container, ident: str) -> dict[str, Any]:
    """The ``show`` object: ``{"id", "messages": [...], "reasons": [...], "job", "replay": {action, detail}}``.

    ``messages`` are the DLQ messages of that job or id now in SQS (with body and attributes); ``reasons`` every
    reason row recorded for it, newest first (tracebacks included); ``job`` its API view plus ``stage_results``.

    Raises:
        DeadLetterNotFound: nothing is known about ``ident``.
        botocore.exceptions.ClientError, sqlalchemy.exc.SQLAlchemyError: a dependency is down.
    """
    messages = peek(c.sqs, c.settings.queue_prefix)
    with c.db.connect() as conn:
        entries = select(join(conn, messages), DlqFilter(ids=frozenset({ident})))
        reasons = [
            dict(r)
            for r in conn.execute(
                sa.select(dead_letters)
                .where(sa.or_(dead_letters.c.job_id == ident, dead_letters.c.message_id == ident))
                .order_by(dead_letters.c.last_failed_at.desc())
            ).mappings()
        ]
        job_id = (entries[0].job_id if entries else None) or next((r["job_id"] for r in reasons if r["job_id"]), None)
        if job_id is None and ident.startswith("job_"):
            job_id = ident
        try:
            job = job_repo.get(conn, job_id) if job_id else None
        except job_repo.JobNotFound:
            job = None
    if not entries and not reasons and job is None:
        raise DeadLetterNotFound(ident)
    poison = bool(entries) and is_poison(entries[0].message.body)
    plan = plan_for(job, poison=poison)
    return {
        "id": ident,
        "messages": [
            {
                **e.listing(),
                "body": safe_body(e.message.body),
                "attributes": e.message.attributes,
                "sent_at": e.message.sent_at,
            }
            for e in entries
        ],
        "reasons": [_plain(r) for r in reasons],
        "job": {**job.view(), "stage_results": job.stage_results, "enqueue_generation": job.enqueue_generation}
        if job
        else None,
        "replay": {"action": plan.action, "detail": plan.detail, "in_dlq": bool(entries)},
    }


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A reason row for printing: times in ISO 8601, and nothing that looks like a card number (rows written
    before bodies were redacted at the source may still hold one)."""
    out = {k: (iso_utc(v) if isinstance(v, datetime) else v) for k, v in row.items()}
    if isinstance(out.get("body"), str):
        out["body"] = safe_body(out["body"])
    for key in ("error_message", "traceback"):
        if isinstance(out.get(key), str):
            out[key] = scrub_text(out[key])
    return out
