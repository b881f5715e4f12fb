"""Fixtures for dead-letter operations: a real worker (Dramatiq on the engine's broker) running the payment
pipeline against the Stripe sandbox, and helpers to submit payments and run ``payments dlq`` as a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import httpx
import pytest
import sqlalchemy as sa

from engine.broker.envelope import Envelope, to_message
from engine.db import jobs as job_repo
from engine.jobs.job import Job, new_job_id
from engine.runtime.container import Container
from tests.fixtures.services import ROOT

pytestmark = pytest.mark.integration


def submit(c: Container, *, payment_method: str = "pm_card_visa", customer: str | None = None) -> str:
    """Accept a payment as the ingest does (job row committed, then the message sent); return the job id."""
    customer = customer or f"cus_{uuid.uuid4().hex[:10]}"
    data = {
        "customer": {"id": customer, "email": "ops@example.ie", "country": "IE", "type": "consumer"},
        "amount": 1000,
        "currency": "eur",
        "payment_method": payment_method,
    }
    scope = f"test:{uuid.uuid4()}"
    job = Job(
        id=new_job_id(),
        kind="payment",
        status="accepted",
        stage=None,
        idempotency_scope=scope,
        queue="payments.fifo",
        group_id=customer,
        request=data,
        customer_id=customer,
    )
    with c.db.begin() as conn:
        job_repo.insert(conn, job)
    envelope = Envelope.new(kind="payment", data=data, idempotency_scope=scope, group_id=customer, job_id=job.id)
    c.broker.enqueue(to_message(envelope, "payments"))
    return job.id


def job(c: Container, job_id: str) -> Job:
    with c.db.connect() as conn:
        return job_repo.get(conn, job_id)


def wait_until(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not met within {timeout}s")


def intents(stripe_sim: Any, job_id: str) -> list[dict[str, Any]]:
    """Every PaymentIntent the sandbox holds for ``job_id``."""
    data = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents", params={"job_id": job_id}).json()["data"]
    return [pi for pi in data if (pi.get("metadata") or {}).get("job_id") == job_id]


def sim(stripe_sim: Any, path: str = "config", **payload: Any) -> None:
    answer = httpx.post(f"{stripe_sim.base_url}/_sim/{path}", json=payload)
    assert answer.status_code == 200, answer.text


def queue_url(c: Container, name: str) -> str:
    return str(c.sqs.get_queue_url(QueueName=f"{c.settings.queue_prefix}{name}")["QueueUrl"])


def depth(c: Container, name: str) -> int:
    """Visible + in flight + delayed messages of a queue."""
    attrs = c.sqs.get_queue_attributes(
        QueueUrl=queue_url(c, name),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


class Workers:
    """Dramatiq workers on a container's broker whose ``process_payment`` runs the real pipeline with that container.

    The actor is bound to that broker only; the global broker is restored by :meth:`stop`.
    """

    def __init__(self, c: Container) -> None:
        self.broker = c.broker
        self._previous = dramatiq.broker.global_broker
        dramatiq.set_broker(self.broker)
        if "process_payment" not in self.broker.actors:

            @dramatiq.actor(broker=self.broker, queue_name="payments", actor_name="process_payment")
            def process_payment(envelope: dict[str, Any]) -> None:
                c.run_job("payment", envelope)

        self.workers: list[dramatiq.Worker] = []

    def start(self) -> dramatiq.Worker:
        worker = dramatiq.Worker(self.broker, worker_threads=4, worker_timeout=100)
        worker.start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=10_000)
        self.workers.clear()
        self.broker.close()
        dramatiq.broker.global_broker = self._previous


@pytest.fixture
def start_worker(payment_container: Container) -> Iterator[Callable[[], dramatiq.Worker]]:
    """Start a worker running the payment pipeline on this test's container; stopped at teardown."""
    workers = Workers(payment_container)
    yield workers.start
    workers.stop()


@pytest.fixture
def payments_cli(payment_container: Container, tmp_path: Any) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``payments …`` in a subprocess against this test's services, as an operator would."""
    s = payment_container.settings
    assert s.database.url is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env.update(
        {
            "PAYMENTS_DATA_DIR": str(tmp_path / "cli-var"),
            "PAYMENTS_DATABASE_URL": s.database.url.get_secret_value(),
            "PAYMENTS_SQS_ENDPOINT_URL": str(s.sqs.endpoint_url),
            "PAYMENTS_S3_ENDPOINT_URL": str(s.s3.endpoint_url),
            "PAYMENTS_REDIS_URL": s.redis.url.get_secret_value() if s.redis.url else "",
            "PAYMENTS_QUEUE_PREFIX": s.queue_prefix,
            "PAYMENTS_LOG_LEVEL": "WARNING",
        }
    )

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"payments {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    return run


def cli_json(run: Callable[..., subprocess.CompletedProcess[str]], *args: str) -> Any:
    return json.loads(run(*args).stdout)


def stale(c: Container, job_id: str, seconds: int) -> None:
    """Pretend ``job_id`` made no progress for ``seconds``."""
    from engine.db.tables import jobs

    with c.db.begin() as conn:
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(updated_at=sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds))
        )
