"""Fixtures for the audit trail: a database of the test's own (a chain is one per database, and some tests
break it on purpose), a container on it with the Stripe sandbox, queues and buckets provisioned, and the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import SecretStr

from config.settings import get_settings
from engine.runtime.container import Container

pytestmark = pytest.mark.integration


@pytest.fixture
def audit_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database migrated to head, dropped after the test."""
    from engine.db.migrate import upgrade

    name = f"payments_audit_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{postgres_server_url.rpartition('/')[0]}/{name}"
    upgrade(url)
    yield url
    from engine.db.engine import get_engine, normalise_url

    get_engine(normalise_url(url)).dispose()
    get_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def audit_container(payment_settings: Any, audit_database_url: str) -> Container:
    """The payment container on the test's own database, queues and buckets (the audit bucket locked) made."""
    from engine.adapters.s3 import ensure_buckets
    from engine.broker.queues import provision
    from engine.runtime.endpoints import resolve_endpoints

    settings = payment_settings.model_copy(
        update={"database": payment_settings.database.model_copy(update={"url": SecretStr(audit_database_url)})}
    )
    c = Container(settings=settings, endpoints=resolve_endpoints(settings))
    provision(c.sqs, settings.queue_prefix, c.queues)
    ensure_buckets(c.s3, settings)
    return c


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_container: Container) -> Iterator[None]:
    """``payments`` commands see the container's database, S3 endpoint and prefix."""
    s = audit_container.settings
    assert s.database.url is not None
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", s.database.url.get_secret_value())
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "cli-var"))
    monkeypatch.setenv("PAYMENTS_QUEUE_PREFIX", s.queue_prefix)
    monkeypatch.setenv("PAYMENTS_S3_ENDPOINT_URL", str(s.s3.endpoint_url))
    monkeypatch.setenv("PAYMENTS_SQS_ENDPOINT_URL", str(s.sqs.endpoint_url))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``payments <args>`` in-process; (exit code, stdout, stderr)."""
    from cli.main import cli

    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr
