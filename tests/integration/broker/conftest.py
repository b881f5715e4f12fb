"""Fixtures for broker integration tests: a provisioned queue set per test on the local SQS endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import boto3
import dramatiq
import pytest

from engine.broker.broker import SQSBroker
from engine.broker.call_counter import CallCounter
from engine.broker.config import BrokerConfig
from engine.broker.dead_letters import MemoryDeadLetterSink
from engine.broker.queues import QueueSpec, provision
from pipelines.registry import CATALOGUE

pytestmark = pytest.mark.integration

#: Fast timings: the semantics stay, the waits shrink.
FAST = BrokerConfig(
    wait_time_seconds=1,
    heartbeat_seconds=0.5,
    delete_flush_seconds=0.05,
    backoff_base_seconds=0.2,
    backoff_max_seconds=1.0,
    max_receive_count=3,
)
PAYMENTS: QueueSpec = CATALOGUE[0]
NOTIFICATIONS: QueueSpec = CATALOGUE[-1]


@pytest.fixture
def sqs(local_aws_url: str) -> Any:
    """A real boto3 SQS client on the local endpoint."""
    return boto3.client(
        "sqs",
        endpoint_url=local_aws_url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def queues(sqs: Any, queue_prefix: str) -> dict[str, Any]:
    """The payments and notifications queues (with DLQs) under this test's prefix; name → ProvisionedQueue."""
    # SQS's redrive at the broker's count, so these tests see the safety net act after three receives.
    specs = tuple(replace(s, max_receive_count=FAST.max_receive_count) for s in (PAYMENTS, NOTIFICATIONS))
    done = provision(sqs, queue_prefix, specs)
    return {p.name.removeprefix(queue_prefix): p for p in done}


def set_visibility_timeout(sqs: Any, url: str, seconds: int) -> None:
    """Shorten a queue's VisibilityTimeout (tests of redelivery and heartbeat)."""
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(seconds)})


@pytest.fixture
def sink() -> MemoryDeadLetterSink:
    return MemoryDeadLetterSink()


@pytest.fixture
def counter(sqs: Any) -> CallCounter:
    """Counts every call the test's client makes (the broker shares that client)."""
    return CallCounter().attach(sqs)


@pytest.fixture
def broker(sqs: Any, queue_prefix: str, queues: dict[str, Any], sink: MemoryDeadLetterSink) -> Iterator[SQSBroker]:
    """An SQSBroker on this test's queues, set as the global broker while the test runs."""
    b = SQSBroker(sqs, catalogue=CATALOGUE, prefix=queue_prefix, config=FAST, dead_letter_sink=sink)
    previous = dramatiq.broker.global_broker
    dramatiq.set_broker(b)
    yield b
    b.close()
    # Leave the global broker as found: other tests must not inherit a closed broker.
    dramatiq.broker.global_broker = previous


@pytest.fixture
def start_worker(broker: SQSBroker) -> Iterator[Callable[..., dramatiq.Worker]]:
    """Start a Dramatiq worker on the broker; every started worker is stopped at teardown."""
    workers: list[dramatiq.Worker] = []

    def start(threads: int = 4) -> dramatiq.Worker:
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop(timeout=10_000)
