"""The database reports read: the read replica when ``PAYMENTS_DATABASE_REPLICA_URL`` is set, else the primary.

Reports take their own engine (a small pool, ``application_name = payments-reports``), never the workers' pool:
a long report cannot starve the pipelines of connections, and on the primary its sessions are easy to tell apart
in ``pg_stat_activity``.  Every session is read-only (``default_transaction_read_only``) and a report runs in one
REPEATABLE READ transaction, so all its figures come from one snapshot (allowed on a hot standby too).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from config.settings import Settings
from engine.db.engine import normalise_url
from engine.runtime.endpoints import Endpoints

APPLICATION_NAME = "payments-reports"


def reports_url(settings: Settings, endpoints: Endpoints) -> str:
    """The replica's URL when configured, else the primary's.  Raises
    :class:`engine.runtime.endpoints.NothingRunningError` when neither is configured nor running."""
    if settings.database.replica_url is not None:
        return settings.database.replica_url.get_secret_value()
    url = endpoints.require("database").database_url
    assert url is not None
    return url


@functools.lru_cache(maxsize=4)
def reports_engine(url: str) -> sa.Engine:
    """The reports' own engine for ``url``, one per process: two connections, read-only sessions."""
    return sa.create_engine(
        normalise_url(url),
        pool_size=2,
        max_overflow=0,
        pool_pre_ping=True,
        # Errors and logs name the statement, never its parameters (customer data, issue 14 item 4).
        hide_parameters=True,
        connect_args={"application_name": APPLICATION_NAME, "options": "-c default_transaction_read_only=on"},
    )


@contextmanager
def snapshot(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside one read-only REPEATABLE READ transaction, rolled back at the end (nothing to keep)."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        txn = conn.begin()
        try:
            yield conn
        finally:
            txn.rollback()
