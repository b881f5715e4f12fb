"""The embedded PostgreSQL and Redis start, serve other clients, stop and keep their data."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.embedded.local_aws import LocalAwsError, LocalAwsServer
from sandbox.embedded.postgres import EmbeddedPostgres
from sandbox.embedded.redis import EmbeddedRedis, local_redis_reachable
from sandbox.ports import port_open
from tests.fixtures.services import ROOT, need

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_dir() -> Iterator[Path]:
    """A data dir under the project's var/ (as root the server's user must traverse every parent; pytest's
    tmp dirs are 0700), removed with its side files afterwards."""
    base = ROOT / "var" / f"test-embedded-{uuid.uuid4().hex[:8]}"
    yield base / "postgres"
    shutil.rmtree(base, ignore_errors=True)


def test_embedded_postgres_start_connect_stop_restart(pg_dir: Path) -> None:
    import sqlalchemy as sa

    server = EmbeddedPostgres(pg_dir)
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    parents = [pg_dir.parent, *pg_dir.parent.parents]
    modes_before = [p.stat().st_mode for p in parents]
    try:
        url = server.start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        need(False, f"the embedded PostgreSQL cannot start here: {exc}")
        return
    try:
        assert url.startswith("postgresql+psycopg://postgres:") and url.endswith("/payments")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "payments"
            conn.execute(sa.text("CREATE TABLE kept (v text)"))
            conn.execute(sa.text("INSERT INTO kept VALUES ('across restarts')"))
        engine.dispose()
        # A second launcher (e.g. after the first crashed) attaches to the running server.
        assert EmbeddedPostgres(pg_dir).start() == url
        # The password is required over TCP.
        wrong = sa.create_engine(url.replace(url.split(":")[2].split("@")[0], "wrong"))
        with pytest.raises(sa.exc.OperationalError):
            wrong.connect()
        wrong.dispose()
        server.stop()
        assert not server.is_running()
        server.stop()  # idempotent
        url2 = EmbeddedPostgres(pg_dir).start()
        engine = sa.create_engine(url2)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT v FROM kept")).scalar() == "across restarts"
        engine.dispose()
        # Nothing above the data dir had its permissions changed (the wheel's own launcher loosens them all).
        assert [p.stat().st_mode for p in parents] == modes_before
        if os.geteuid() == 0:
            assert pg_dir.stat().st_uid != 0  # PostgreSQL runs as its own user, not as root
    finally:
        server.stop()
    assert not port_open("127.0.0.1", int(url2.rsplit(":", 1)[1].split("/")[0]))


def test_embedded_redis_serves_a_second_client_and_stops(tmp_path: Path) -> None:
    import redis

    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    try:
        assert url.startswith("redis://127.0.0.1:")
        other = redis.Redis.from_url(url)
        assert other.ping()
        other.set("k", "v")
        assert local_redis_reachable(url)
    finally:
        server.stop()
    assert not local_redis_reachable(url)
    again = EmbeddedRedis(tmp_path / "redis")
    url2 = again.start()
    try:
        assert redis.Redis.from_url(url2).get("k") == b"v"  # saved on stop
    finally:
        again.stop()


def test_local_aws_server_reports_a_taken_port_and_restarts() -> None:
    first = LocalAwsServer(port=0)
    url = first.start()
    assert first.start() == url  # idempotent while running
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(LocalAwsError, match=str(port)):
        LocalAwsServer(port=port).start()
    first.stop()
    assert not port_open("127.0.0.1", port)
    first.stop()
