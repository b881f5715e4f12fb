"""The migrations build exactly the schema the code queries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.db.engine import get_engine
from engine.db.migrate import current_revision, head_revision, upgrade
from engine.db.schema import metadata


def test_migrated_schema_matches_table_definitions(database_url: str) -> None:
    with get_engine(database_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    assert current_revision(database_url) == head_revision()


def test_idempotency_scope_is_unique(database_url: str) -> None:
    from engine.db.tables import jobs

    row = {
        "id": "job_schema_1",
        "kind": "payment",
        "idempotency_scope": "scope-unique-test",
        "queue": "payments.fifo",
        "group_id": "cus_1",
        "request": {},
    }
    engine = get_engine(database_url)
    with engine.begin() as conn:
        conn.execute(jobs.insert().values(**row))
    with engine.begin() as conn, __import__("pytest").raises(sa.exc.IntegrityError):
        conn.execute(jobs.insert().values(**{**row, "id": "job_schema_2"}))
