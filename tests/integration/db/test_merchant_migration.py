"""Migration 0015 (merchants): rows made before it belong to the default merchant, and a payment job holding a
``client_secret`` learns its creator from its idempotency scope, so its client keeps seeing the secret."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from engine.db.migrate import upgrade


@pytest.fixture
def old_database(postgres_server_url: str) -> Iterator[str]:
    """A fresh database migrated to 0014, the revision before merchants.  Dropped afterwards."""
    name = f"payments_m15_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{postgres_server_url.rpartition('/')[0]}/{name}"
    upgrade(url, "0014")
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _job(conn: sa.Connection, job_id: str, scope: str, result: dict[str, object]) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO jobs (id, kind, idempotency_scope, queue, group_id, request, result) "
            "VALUES (:id, 'payment', :scope, 'payments.fifo', 'g', '{}'::jsonb, CAST(:result AS jsonb))"
        ),
        {"id": job_id, "scope": scope, "result": json.dumps(result)},
    )


def test_old_rows_belong_to_the_default_merchant_and_keep_their_creator(old_database: str) -> None:
    db = sa.create_engine(old_database)
    secret = {"stripe": {"payment_intent": "pi_1", "client_secret": "pi_1_secret_x"}}
    with db.begin() as conn:
        _job(conn, "job_a", "api:12:svc:checkout:order-1:k", secret)  # a sub holding ':' is length-prefixed
        _job(conn, "job_b", "api:3:erp:k2", {"stripe": {"payment_intent": "pi_2"}})  # no secret: left alone
        _job(conn, "job_c", "test:upstream-scope", secret)  # not made by the API: no creator
    upgrade(old_database)
    with db.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, merchant_id || '|' || coalesce(created_by, '-') FROM jobs")).all())
    db.dispose()
    assert rows == {"job_a": "default|svc:checkout", "job_b": "default|-", "job_c": "default|-"}
