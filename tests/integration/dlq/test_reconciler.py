"""The reconciler (issue 7, item 4): after the SQS endpoint restarts empty with jobs in flight, the scheduler's
reconciler re-sends every accepted job that made no progress, and each one reaches a terminal status, charged
once.  Terminal jobs are left alone; a job is re-sent at most once per threshold."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import SecretStr

from config.settings import DatabaseSettings, ReconcileSettings, S3Settings, Settings, SqsSettings
from engine.broker.queues import provision
from engine.db.tables import jobs
from engine.ops.scheduler import TASKS, run_once
from engine.runtime.container import Container
from engine.runtime.endpoints import resolve_endpoints
from sandbox.embedded.local_aws import LocalAwsServer
from tests.integration.dlq.conftest import Workers, depth, intents, job, stale, submit, wait_until

RECONCILER = [t for t in TASKS if t.name == "reconciler"]


def _forget_queues(prefix: str) -> None:
    """What a restart of the in-memory endpoint does to this test's queues: they and their messages are gone.
    (moto keeps state per process, so a server stopped and started in this process would still have them.)"""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"]
    for name in [n for n in backend.queues if n.startswith(prefix)]:
        del backend.queues[name]


@pytest.fixture
def private_database(postgres_server_url: str) -> Any:
    """A database of this test alone: the reconciler looks at every job, and other tests leave jobs accepted."""
    import uuid

    import sqlalchemy as sa

    from engine.db.migrate import upgrade

    name = f"payments_reconcile_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{postgres_server_url.rpartition('/')[0]}/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def private_aws() -> Any:
    server = LocalAwsServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


def test_jobs_in_flight_when_the_endpoint_restarts_are_reconciled_to_a_terminal_status(
    payment_settings: Settings, stripe_sim: Any, private_aws: LocalAwsServer, private_database: str
) -> None:
    url = private_aws.url
    assert url is not None
    settings = payment_settings.model_copy(
        update={
            "database": DatabaseSettings(url=SecretStr(private_database)),
            "sqs": SqsSettings(endpoint_url=url, wait_time_seconds=1),
            "s3": S3Settings(endpoint_url=url),
            "reconcile": ReconcileSettings(after_seconds=2),
        }
    )
    c = Container(settings=settings, endpoints=resolve_endpoints(settings))
    provision(c.sqs, settings.queue_prefix, c.queues)
    accepted = [submit(c) for _ in range(4)]
    declined = submit(c, payment_method="pm_card_chargeDeclined")
    finished = submit(c)
    with c.db.begin() as conn:  # a terminal job without progress for long: never touched
        conn.execute(jobs.update().where(jobs.c.id == finished).values(status="succeeded"))
    stale(c, finished, 3600)
    assert depth(c, "payments.fifo") == 6

    # The endpoint restarts (same address) and comes back empty; `payments run` recreates the queues.
    port = int(url.rsplit(":", 1)[1])
    private_aws.stop()
    _forget_queues(settings.queue_prefix)
    restarted = LocalAwsServer(host="127.0.0.1", port=port)
    assert restarted.start() == url
    try:
        provision(c.sqs, settings.queue_prefix, c.queues)
        assert depth(c, "payments.fifo") == 0

        assert run_once(c, tasks=RECONCILER)["reconciler"].startswith("0 ")  # nothing stale yet
        time.sleep(2.2)
        report = run_once(c, tasks=RECONCILER)["reconciler"]
        assert report.startswith("5 job(s) without progress for 2s re-enqueued"), report
        assert finished not in report
        assert run_once(c, tasks=RECONCILER)["reconciler"].startswith("0 ")  # touched: not sent twice
        assert all(job(c, j).enqueue_generation == 1 for j in [*accepted, declined])

        workers = Workers(c)
        try:
            workers.start()
            wait_until(lambda: all(job(c, j).status == "succeeded" for j in accepted), timeout=30)
            wait_until(lambda: job(c, declined).status == "failed")
        finally:
            workers.stop()
        for job_id in accepted:
            assert [pi["status"] for pi in intents(stripe_sim, job_id)] == ["succeeded"]
        assert job(c, finished).enqueue_generation == 0
    finally:
        restarted.stop()
