"""Fixtures of the reports' integration tests: an empty, migrated database per test, and booking in the past.

Reports read a whole period of the ledger, which the other tests of a worker share; each report test therefore
gets its own database, cloned in a few milliseconds from a migrated template (``CREATE DATABASE … TEMPLATE``).
Transactions are booked at chosen times by writing their rows directly (``record`` books at ``now()``, and the
ledger refuses updates); the database's balance check still runs at commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.db.ledger import new_transaction_id
from engine.db.rates import import_rates
from engine.db.tables import ledger_entries, ledger_transactions
from engine.domain.ecb_files import parse
from engine.domain.ledger import LedgerTransaction
from tests.fixtures.services import need, worker_id

DATA = Path(__file__).resolve().parents[2] / "data" / "ecb"


@pytest.fixture(scope="session")
def template_database(postgres_server_url: str) -> Iterator[str]:
    """The name of a migrated database nobody stays connected to (the clone source)."""
    from engine.db.migrate import upgrade

    name = f"payments_tmpl_{worker_id()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        need(False, f"PostgreSQL not usable at {postgres_server_url}: {exc}")
    base = postgres_server_url.rpartition("/")[0]
    upgrade(f"{base}/{name}")
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_database(postgres_server_url: str, template_database: str) -> Iterator[str]:
    """URL of an empty migrated database private to one test; dropped afterwards."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"payments_rep_{worker_id()}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield f"{postgres_server_url.rpartition('/')[0]}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db(fresh_database: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(fresh_database, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def book_at(conn: sa.Connection, txn: LedgerTransaction, at: datetime) -> str:
    """Book ``txn`` as if at ``at`` (its rows written directly, ``created_at`` set); returns its id."""
    tid = new_transaction_id()
    conn.execute(
        ledger_transactions.insert().values(
            id=tid,
            kind=txn.kind,
            job_id=txn.job_id,
            effect_key=txn.effect_key,
            description=txn.description,
            metadata=dict(txn.metadata),
            created_at=at,
        )
    )
    conn.execute(
        ledger_entries.insert().values(
            [
                {
                    "transaction_id": tid,
                    "account": p.account,
                    "currency": p.currency,
                    "amount": p.amount,
                    "created_at": at,
                }
                for p in txn.postings
            ]
        )
    )
    return tid


def import_real_rates(engine: sa.Engine) -> None:
    """The ECB's real publications of 2024 in tests/data/ecb."""
    with engine.begin() as conn:
        import_rates(conn, parse((DATA / "eurofxref-hist-2024.csv").read_bytes()), "eurofxref-hist.csv")


def settings_on(engine_settings, url: str, replica_url: str | None = None):  # type: ignore[no-untyped-def]
    """``engine_settings`` with ``url`` as the primary (and ``replica_url`` as the reports' replica)."""
    from pydantic import SecretStr

    database = engine_settings.database.model_copy(
        update={"url": SecretStr(url), "replica_url": SecretStr(replica_url) if replica_url else None}
    )
    return engine_settings.model_copy(update={"database": database})


def container_on(settings):  # type: ignore[no-untyped-def]
    """A container for ``settings`` with its queues and buckets provisioned."""
    from engine.adapters.s3 import ensure_buckets
    from engine.broker.queues import provision
    from engine.runtime.container import Container
    from engine.runtime.endpoints import resolve_endpoints

    c = Container(settings=settings, endpoints=resolve_endpoints(settings))
    provision(c.sqs, settings.queue_prefix, c.queues)
    ensure_buckets(c.s3, settings)
    return c


@pytest.fixture
def report_container(engine_settings, fresh_database: str):  # type: ignore[no-untyped-def]
    """A container whose database is this test's own (reports read whole periods of the ledger)."""
    c = container_on(settings_on(engine_settings, fresh_database))
    yield c
    c.db.dispose()
    c.reports_db.dispose()
