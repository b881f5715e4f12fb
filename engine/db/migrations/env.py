"""Alembic environment: online migrations only, one transaction, serialised by an advisory lock."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from engine.db.schema import metadata

# Any constant: two processes migrating at once (e.g. `payments run` and a test) take turns.
MIGRATION_LOCK_ID = 0x7061796D


def run_migrations_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set"
    connectable = sa.create_engine(url, poolclass=sa.pool.NullPool, hide_parameters=True)
    with connectable.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=False)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    connectable.dispose()


run_migrations_online()
