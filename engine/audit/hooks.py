"""The one call each audited operation makes, in its own transaction, as that transaction's last statement.

The ingest's hooks (``job.create``, ``webhook.receive``) queue their record (:func:`engine.audit.chain.enqueue`:
no lock on the request path); the others chain it at once (:func:`engine.audit.chain.append`).

Each hook says who (``actor``), what (``action``), the job, and details without personal data.  Actions:

=====================  =====================================================  ==================================
action                 appended by                                            actor
=====================  =====================================================  ==================================
``job.create``         an API call that created a job (engine/ingest/accept)  the token's subject
``webhook.receive``    a Stripe event recorded (pipelines/webhook/routes)     ``stripe``
``dlq.replay``         ``payments dlq replay``, per message                   ``cli:<OS user>``
``dlq.purge``          ``payments dlq purge``, per message                    ``cli:<OS user>``
``review.approve``     ``payments review`` / ``POST /v1/jobs/{id}/review``    the reviewer
``review.decline``     the same                                               the reviewer
``config.start``       a process started with settings unlike the last ones   ``process:<role>``
``customer.erase``     ``payments customers erase``                           ``cli:<OS user>``
=====================  =====================================================  ==================================
"""

from __future__ import annotations

import getpass
import json
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine.audit.chain import append, enqueue
from engine.audit.record import canonical_json, make_body
from engine.domain.timestamps import iso_utc

if TYPE_CHECKING:
    from engine.jobs.job import Job
    from engine.ops.dlq.entries import DlqEntry
    from engine.runtime.container import Container

log = logging.getLogger(__name__)


def cli_actor() -> str:
    """Who runs a CLI operation: ``cli:`` and the operating-system user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's random uid)
        user = "unknown"
    return f"cli:{user}"


def job_created(conn: sa.Connection, *, actor: str, job: Job, request_hash: str) -> int:
    """An API call created ``job``: the request is identified by its hash, not copied (it holds personal data)."""
    detail = {"kind": job.kind, "request_sha256": request_hash, "customer": job.customer_id}
    detail["merchant"] = job.merchant_id
    # Queued, not chained here: the ingest's commits must not wait for each other (migration 0012).
    return enqueue(conn, actor=actor, action="job.create", job=job.id, detail=detail)


def job_created_body(*, actor: str, job: Job, request_hash: str) -> str:
    """The body of :func:`job_created`'s record, for the ingest's request path, which queues it in a statement of
    its own (``engine/db/accepted.py``)."""
    detail = {"kind": job.kind, "request_sha256": request_hash, "customer": job.customer_id}
    detail["merchant"] = job.merchant_id
    return make_body(at=iso_utc(datetime.now(UTC)), actor=actor, action="job.create", job=job.id, detail=detail)


def webhook_received(conn: sa.Connection, *, job: Job, event: dict[str, Any]) -> int:
    """A signed Stripe event was recorded with its webhook ``job``."""
    detail = {"event": str(event.get("id")), "type": str(event.get("type")), "object": job.group_id}
    return enqueue(conn, actor="stripe", action="webhook.receive", job=job.id, detail=detail)


def dlq_moved(conn: sa.Connection, *, entry: DlqEntry, action: str, outcome: str) -> int:
    """A dead letter was replayed (``action`` ``dlq.replay``) or archived and purged (``dlq.purge``)."""
    detail = {"queue": entry.source_queue, "message_id": entry.message.message_id, "kind": entry.kind}
    detail["outcome"] = outcome
    return append(conn, actor=cli_actor(), action=action, job=entry.job_id, detail=detail)


def review_decided(conn: sa.Connection, *, job: Job, decision: str, reviewer: str) -> int:
    """A review decision (``approve`` or ``decline``) on ``job``, parked in_review (its merchant recorded)."""
    detail = {"decision": decision, "merchant": job.merchant_id}
    return append(conn, actor=reviewer, action=f"review.{decision}", job=job.id, detail=detail)


def configuration_started(db: sa.Engine, *, role: str, settings: dict[str, Any]) -> int | None:
    """Record ``settings`` (the effective settings, secrets already masked) for a starting process of ``role``
    when they differ from the last ones recorded for that role; the record's number, or ``None`` when unchanged.

    Raises :class:`sqlalchemy.exc.SQLAlchemyError` when the database refuses.
    """
    from engine.db.tables_audit import audit_records

    actor = f"process:{role}"
    fingerprint = canonical_json(settings)
    with db.begin() as conn:
        last = conn.execute(
            sa.select(audit_records.c.body)
            .where(audit_records.c.action == "config.start", audit_records.c.actor == actor)
            .order_by(audit_records.c.seq.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last is not None and canonical_json(json.loads(last).get("detail", {}).get("settings")) == fingerprint:
            return None
        return append(conn, actor=actor, action="config.start", detail={"settings": settings})


_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_SECRET_WORDS = ("secret", "password", "token", "api_key", "private")


def non_secret(view: Any) -> Any:
    """``view`` (nested settings) with URL userinfo masked and secret-named values dropped: what may be recorded."""
    if isinstance(view, dict):
        return {
            k: ("**********" if any(w in str(k).lower() for w in _SECRET_WORDS) and v else non_secret(v))
            for k, v in view.items()
        }
    if isinstance(view, list):
        return [non_secret(v) for v in view]
    if isinstance(view, str):
        return _USERINFO.sub(r"\g<scheme>***@", view)
    return view


def process_started(c: Container, role: str) -> int | None:
    """Record the effective non-secret settings of a starting process of ``role`` (``ingest``, ``worker``,
    ``scheduler``) when they changed since that role's last start; the record's number or ``None``.

    Never stops the process: a database that refuses is logged (the process cannot work without it anyway, and
    says so in its own checks).
    """
    from engine.runtime.endpoints import effective_settings_view

    try:
        settings = non_secret(json.loads(json.dumps(effective_settings_view(c.settings), default=str)))
        return configuration_started(c.db, role=role, settings=settings)
    except Exception as exc:  # the audit record of a start must not keep the process from starting
        log.warning("could not record the %s configuration in the audit trail: %s", role, exc)
        return None
