"""Rows of ``subscriptions`` in and out, and the state changes the pipeline and the scheduler apply.

State changes travel as plain dicts of column → JSON value (datetimes as ISO strings) so a decision can be kept
in a job's ``stage_results`` and applied later, inside the checkpoint's transaction.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.outbox import add_event
from engine.db.tables_subscriptions import subscriptions
from engine.domain.merchant import DEFAULT_MERCHANT
from engine.domain.timestamps import iso_utc

#: Columns a state change may set.
MUTABLE = frozenset(
    {
        "plan",
        "status",
        "payment_method",
        "billing_cycle_anchor",
        "period_index",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
        "canceled_at",
        "trial_end",
        "credit_balance",
        "dunning_attempt",
        "next_retry_at",
    }
)
_TIMES = frozenset(
    {"billing_cycle_anchor", "current_period_start", "current_period_end", "canceled_at", "trial_end", "next_retry_at"}
)


def new_subscription_id() -> str:
    """``sub_`` and 24 random base-32 characters."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "sub_" + "".join(secrets.choice(alphabet) for _ in range(24))


def parse_time(value: str | datetime | None) -> datetime | None:
    """Inverse of :func:`engine.domain.timestamps.iso_utc` (also accepts a datetime)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def get(
    conn: sa.Connection, subscription_id: str, *, for_update: bool = False, merchant: str | None = None
) -> dict[str, Any] | None:
    """The subscription row as a dict, or None (also when it belongs to another merchant than ``merchant``)."""
    query = sa.select(subscriptions).where(subscriptions.c.id == subscription_id)
    if merchant is not None:
        query = query.where(subscriptions.c.merchant_id == merchant)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().one_or_none()
    return dict(row) if row is not None else None


def insert_incomplete(
    conn: sa.Connection,
    *,
    subscription_id: str,
    customer: dict[str, Any],
    plan: str,
    payment_method: str,
    job_id: str,
    merchant_id: str = DEFAULT_MERCHANT,
) -> None:
    """The row of a subscription whose first job is accepted but not yet run (``incomplete``); no-op if present."""
    conn.execute(
        insert(subscriptions)
        .values(
            id=subscription_id,
            customer_id=customer["id"],
            customer=customer,
            plan=plan,
            status="incomplete",
            payment_method=payment_method,
            created_job_id=job_id,
            merchant_id=merchant_id,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


def _columns(change: dict[str, Any]) -> dict[str, Any]:
    unknown = change.keys() - MUTABLE
    if unknown:
        raise ValueError(f"not a subscription state field: {', '.join(sorted(unknown))}")
    return {k: parse_time(v) if k in _TIMES else v for k, v in change.items()}


def apply(
    conn: sa.Connection, subscription_id: str, change: dict[str, Any], create: dict[str, Any] | None = None
) -> None:
    """Apply ``change`` to the subscription (``version`` + 1).  With ``create`` (customer, plan, payment_method,
    created_job_id), a missing row is inserted first: a job enqueued directly by an upstream system has none."""
    if create is not None:
        conn.execute(
            insert(subscriptions)
            .values(
                id=subscription_id,
                customer_id=create["customer"]["id"],
                status="incomplete",
                **create,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
    if not change:
        return
    conn.execute(
        subscriptions.update()
        .where(subscriptions.c.id == subscription_id)
        .values(**_columns(change), version=subscriptions.c.version + 1, updated_at=sa.func.now())
    )


def view(row: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/subscriptions/{id}``."""
    return {
        "id": row["id"],
        "object": "subscription",
        "customer": row["customer_id"],
        "plan": row["plan"],
        "status": row["status"],
        "current_period_start": iso_utc(parse_time(row.get("current_period_start"))),
        "current_period_end": iso_utc(parse_time(row.get("current_period_end"))),
        "cancel_at_period_end": bool(row.get("cancel_at_period_end")),
    }


def job_block(row: dict[str, Any]) -> dict[str, Any]:
    """The ``subscription`` object of a subscription job."""
    full = view(row)
    return {k: full[k] for k in ("id", "status", "plan", "current_period_start", "current_period_end")}


def merged(row: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """The row as it will be once ``change`` is applied (for the job's view, computed before the write)."""
    return {**row, **_columns(change)}


def notify(conn: sa.Connection, row: dict[str, Any], event: str, key: str, job_id: str | None) -> None:
    """Write the outbox event ``subscription.{event}`` (unique ``key``) with the subscription's view."""
    add_event(conn, job_id=job_id, event_type=f"subscription.{event}", event_key=key, payload=view(row))
