"""GDPR erasure: a customer's e-mail and name replaced by pseudonyms in jobs and notifications, and recorded.

The customer id stays (the ledger and the audit chain refer to it; both hold no e-mail or name, so both stay as
they are and verifiable).  What is rewritten, in one transaction with the ``customer.erase`` audit record:

* the customer's jobs (``jobs.customer_id``): ``request``, ``stage_results``, ``result``, ``error``;
* their notifications (``outbox.payload``) and the saved API answers (``idempotency_keys.response_body``);
* their dead letters' message bodies (``dead_letters.body``, ``dlq_archive.body``).

A value is personal when its key is an e-mail key (:data:`EMAIL_KEYS`) anywhere, or a name key
(:data:`NAME_KEYS`) inside an object that is a customer (under ``customer`` or ``billing_details``, or holding an
e-mail).  The pseudonym is stable per customer (``erased-<16 hex>@erased.invalid``): a second erasure changes
nothing, and an e-mail field still holds an address.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.audit.chain import append
from engine.db.tables import dead_letters, idempotency_keys, jobs, outbox
from engine.db.tables_dlq import dlq_archive
from engine.domain.merchant import DEFAULT_MERCHANT, customer_ref

EMAIL_KEYS = frozenset({"email", "receipt_email", "customer_email"})
NAME_KEYS = frozenset({"name", "customer_name", "full_name"})
_CUSTOMER_KEYS = frozenset({"customer", "billing_details"})
ERASED_NAME = "erased"


@dataclass(frozen=True)
class Erasure:
    """What an erasure changed, and its audit record."""

    customer: str
    jobs: int
    notifications: int
    answers: int
    dead_letters: int
    audit_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "jobs": self.jobs,
            "notifications": self.notifications,
            "answers": self.answers,
            "dead_letters": self.dead_letters,
            "audit_seq": self.audit_seq,
        }


def pseudonym(customer_id: str, merchant: str = DEFAULT_MERCHANT) -> str:
    """The e-mail address that replaces ``merchant``'s customer ``customer_id``'s (stable, reveals nothing; the
    default merchant's is the one made before merchants existed)."""
    name = customer_id if merchant == DEFAULT_MERCHANT else customer_ref(merchant, customer_id)
    return f"erased-{hashlib.sha256(name.encode()).hexdigest()[:16]}@erased.invalid"


def scrub(value: Any, email: str, *, in_customer: bool = False) -> Any:
    """``value`` with every personal value replaced (see the module docstring); a new object, ``value`` untouched."""
    if isinstance(value, list):
        return [scrub(item, email, in_customer=in_customer) for item in value]
    if not isinstance(value, dict):
        return value
    customer_like = in_customer or any(k in EMAIL_KEYS for k in value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in EMAIL_KEYS and isinstance(item, str):
            out[key] = email
        elif key in NAME_KEYS and customer_like and isinstance(item, str):
            out[key] = ERASED_NAME
        else:
            out[key] = scrub(item, email, in_customer=key in _CUSTOMER_KEYS)
    return out


def _scrub_text(body: str, email: str) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    cleaned = scrub(parsed, email)
    return body if cleaned == parsed else json.dumps(cleaned, separators=(",", ":"))


def erase_customer(db: sa.Engine, customer_id: str, *, actor: str, merchant: str = DEFAULT_MERCHANT) -> Erasure:
    """Pseudonymise ``merchant``'s customer ``customer_id``'s e-mail and name everywhere listed above and append
    ``customer.erase``.  Customer ids are per merchant: another merchant's customer of the same id is another
    person, left alone.

    Raises :class:`sqlalchemy.exc.SQLAlchemyError` (nothing is changed then).
    """
    email = pseudonym(customer_id, merchant)
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(jobs.c.id, jobs.c.request, jobs.c.stage_results, jobs.c.result, jobs.c.error)
            .where(jobs.c.customer_id == customer_id, jobs.c.merchant_id == merchant)
            .order_by(jobs.c.id)
            .with_for_update()
        ).all()
        job_ids = [r.id for r in rows]
        changed_jobs = 0
        for r in rows:
            values = {
                name: scrub(getattr(r, name), email)
                for name in ("request", "stage_results", "result", "error")
                if getattr(r, name) is not None
            }
            if any(values[name] != getattr(r, name) for name in values):
                conn.execute(jobs.update().where(jobs.c.id == r.id).values(**values))
                changed_jobs += 1
        notifications = _scrub_json_rows(conn, outbox, outbox.c.id, outbox.c.payload, outbox.c.job_id, job_ids, email)
        answers = _scrub_answers(conn, job_ids, email)
        letters = _scrub_text_rows(conn, dead_letters, dead_letters.c.id, dead_letters.c.body, job_ids, email)
        letters += _scrub_text_rows(conn, dlq_archive, dlq_archive.c.id, dlq_archive.c.body, job_ids, email)
        detail = {
            "customer": customer_id,
            "merchant": merchant,
            "jobs": changed_jobs,
            "notifications": notifications,
            "answers": answers,
            "dead_letters": letters,
        }
        seq = append(conn, actor=actor, action="customer.erase", detail=detail)
    return Erasure(customer_id, changed_jobs, notifications, answers, letters, seq)


def _scrub_json_rows(
    conn: sa.Connection,
    table: sa.Table,
    key: sa.Column[Any],
    column: sa.Column[Any],
    job_column: sa.Column[Any],
    job_ids: list[str],
    email: str,
) -> int:
    if not job_ids:
        return 0
    changed = 0
    for row in conn.execute(sa.select(key, column).where(job_column.in_(job_ids))).all():
        cleaned = scrub(row[1], email)
        if cleaned != row[1]:
            conn.execute(table.update().where(key == row[0]).values({column.name: cleaned}))
            changed += 1
    return changed


def _scrub_answers(conn: sa.Connection, job_ids: list[str], email: str) -> int:
    if not job_ids:
        return 0
    t = idempotency_keys
    changed = 0
    rows = conn.execute(
        sa.select(t.c.client, t.c.key, t.c.response_body).where(t.c.job_id.in_(job_ids), t.c.response_body.is_not(None))
    ).all()
    for row in rows:
        cleaned = scrub(row.response_body, email)
        if cleaned != row.response_body:
            conn.execute(t.update().where(t.c.client == row.client, t.c.key == row.key).values(response_body=cleaned))
            changed += 1
    return changed


def _scrub_text_rows(
    conn: sa.Connection, table: sa.Table, key: sa.Column[Any], column: sa.Column[Any], job_ids: list[str], email: str
) -> int:
    if not job_ids:
        return 0
    changed = 0
    for row in conn.execute(sa.select(key, column).where(table.c.job_id.in_(job_ids))).all():
        cleaned = _scrub_text(row[1], email)
        if cleaned != row[1]:
            conn.execute(table.update().where(key == row[0]).values({column.name: cleaned}))
            changed += 1
    return changed
