"""What the payments and ingest scenarios run against: the local SQS endpoint and the Stripe sandbox in their own
processes (:class:`sandbox.process.ManagedProcess`), a scratch PostgreSQL database, a private Redis key prefix, and
the ``PAYMENTS_*`` settings that point the engine's processes at them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import SkipScenario
from sandbox.ports import free_port
from sandbox.process import ManagedProcess, payments_argv, stop_all

ROOT = Path(__file__).resolve().parents[1]
MAINTENANCE_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def clean_env() -> dict[str, str]:
    """The environment without any ``PAYMENTS_*`` the caller may have set (the bench decides every setting)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("AWS_ACCESS_KEY_ID", "bench")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    return env


@dataclass
class Services:
    """The shared parts of one scenario run: the local AWS endpoint and (for payments) the Stripe sandbox."""

    workdir: Path
    env: dict[str, str]
    aws_url: str
    processes: list[ManagedProcess] = field(default_factory=list)
    stripe_url: str | None = None

    def start(self, process: ManagedProcess, port: int) -> None:
        """Start ``process`` and wait until it listens on ``port``."""
        self.processes.append(process.start())
        process.wait_for_port(port, timeout=60)

    def stop(self) -> None:
        stop_all(reversed(self.processes), grace=30)


@contextlib.contextmanager
def services(with_stripe: bool) -> Iterator[Services]:
    """Start the local SQS endpoint (and the Stripe sandbox) in their own processes; stop them afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    env = clean_env()
    aws_port = free_port()
    running = Services(workdir, env, f"http://127.0.0.1:{aws_port}")
    try:
        aws = [sys.executable, "-m", "bench.probe", "aws", str(aws_port)]
        running.start(
            ManagedProcess("local-aws", aws, env=env, cwd=ROOT, log=workdir / "local-aws.log", stdin=True), aws_port
        )
        if with_stripe:
            port = free_port()
            sim = payments_argv("sim", "stripe", "--port", str(port))
            running.start(ManagedProcess("stripe-sandbox", sim, env=env, cwd=ROOT, log=workdir / "stripe.log"), port)
            running.stripe_url = f"http://127.0.0.1:{port}"
        yield running
    except BaseException:
        running.stop()
        print(f"bench: logs of the processes kept in {workdir}", file=sys.stderr)
        raise
    running.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def engine_env(
    running: Services, database_url: str, redis_prefix: str, queue_prefix: str, jwt_secret: str
) -> dict[str, str]:
    """``PAYMENTS_*`` for the ingest and the worker: everything explicit, defaults kept where they are the product."""
    env = {
        **running.env,
        "PAYMENTS_DATA_DIR": str(running.workdir / "var"),
        "PAYMENTS_DATABASE_URL": database_url,
        "PAYMENTS_SQS_ENDPOINT_URL": running.aws_url,
        "PAYMENTS_S3_ENDPOINT_URL": running.aws_url,
        "PAYMENTS_QUEUE_PREFIX": queue_prefix,
        "PAYMENTS_REDIS_URL": os.environ.get("BENCH_REDIS_URL", REDIS_URL),
        "PAYMENTS_REDIS_PREFIX": redis_prefix,
        "PAYMENTS_JWT_SECRET": jwt_secret,
        "PAYMENTS_METRICS_PORT": str(free_port()),
        # The limiter still runs (one Redis call per POST, as in production); the limit is only out of reach.
        "PAYMENTS_RATE_LIMIT_PER_MINUTE": "100000000",
    }
    if running.stripe_url:
        env["PAYMENTS_STRIPE_API_BASE"] = running.stripe_url
        env["PAYMENTS_STRIPE_API_KEY"] = "sk_test_bench"
    return env


def provision_queues(aws_url: str, queue_prefix: str) -> None:
    import boto3

    from engine.broker.queues import provision
    from pipelines.registry import CATALOGUE

    sqs = boto3.client(
        "sqs", endpoint_url=aws_url, region_name="eu-west-1", aws_access_key_id="b", aws_secret_access_key="b"
    )
    provision(sqs, queue_prefix, CATALOGUE)


def mint_token(jwt_secret: str) -> str:
    from config.settings import Settings
    from engine.adapters.auth import mint

    settings = Settings(jwt={"secret": jwt_secret})  # type: ignore[arg-type]
    return mint(settings, "operator", sub="bench")


@contextlib.contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database migrated to head; dropped (with its connections) afterwards."""
    import sqlalchemy as sa

    from engine.db.engine import get_engine
    from engine.db.migrate import upgrade

    maintenance = os.environ.get("BENCH_DATABASE_URL", MAINTENANCE_DB)
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(maintenance, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        raise SkipScenario(f"no PostgreSQL at {maintenance} (set BENCH_DATABASE_URL): {exc.orig}") from exc
    url = f"{maintenance.rpartition('/')[0]}/{name}"
    try:
        upgrade(url)
        get_engine(url).dispose()  # the migration's connections: closed, so they flush their statistics
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def xact_commit(database_url: str) -> int:
    """PostgreSQL's committed-transaction counter for the database of ``database_url``."""
    import sqlalchemy as sa

    maintenance = os.environ.get("BENCH_DATABASE_URL", MAINTENANCE_DB)
    name = database_url.rpartition("/")[2]
    admin = sa.create_engine(maintenance, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = :n"), {"n": name}
                ).scalar_one()
            )
    finally:
        admin.dispose()


def redis_client() -> Any:
    """A client for the bench's Redis, or :class:`SkipScenario`."""
    import redis

    url = os.environ.get("BENCH_REDIS_URL", REDIS_URL)
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SkipScenario(f"no Redis at {url} (set BENCH_REDIS_URL): {exc}") from exc
    return client


def delete_prefix(client: Any, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
