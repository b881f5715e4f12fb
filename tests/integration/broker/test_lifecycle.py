"""Visibility heartbeat and graceful shutdown."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq

from engine.broker.broker import SQSBroker
from pipelines.registry import CATALOGUE
from tests.integration.broker.conftest import FAST, set_visibility_timeout
from tests.integration.broker.helpers import envelope, message, queue_counts, wait_until


def test_heartbeat_keeps_a_long_job_from_being_redelivered(
    sqs: Any, broker: SQSBroker, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    broker.declare_queue("payments")
    set_visibility_timeout(sqs, broker.queue_url("payments"), 2)
    runs: list[int] = []
    done = threading.Event()

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        runs.append(env["data"]["n"])
        done.wait(15)  # released by the test after 5 s: 2.5x the visibility timeout

    # Two messages of one group: the second is held (prefetched) the whole time and must not leak either.
    broker.enqueue_many([message(envelope("cus_long", n=n)) for n in (0, 1)])
    worker = start_worker(threads=2)
    assert wait_until(lambda: runs == [0], timeout=5)
    # A second worker (another process in production) polls the queue while the job runs.
    other = SQSBroker(sqs, catalogue=broker.catalogue, prefix=broker.prefix, config=broker.config)
    stolen: list[int] = []
    dramatiq.actor(broker=other, queue_name="payments", actor_name="process_payment")(
        lambda env: stolen.append(env["data"]["n"])
    )
    other_worker = dramatiq.Worker(other, worker_threads=1, worker_timeout=100)
    other_worker.start()
    try:
        assert not wait_until(lambda: bool(stolen), timeout=5)
        assert runs == [0]
        done.set()
        assert wait_until(lambda: runs == [0, 1] or stolen == [1], timeout=10)
    finally:
        other_worker.stop(timeout=10_000)
        other.close()
    worker.stop(timeout=10_000)
    assert stolen in ([], [1]) and 0 not in stolen


def test_shutdown_returns_prefetched_messages_at_once(
    sqs: Any, broker: SQSBroker, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    started = threading.Event()
    release = threading.Event()
    ran: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        ran.append(env["data"]["n"])
        started.set()
        release.wait(5)

    url = broker.queue_url("payments")
    broker.enqueue_many([message(envelope(f"cus_{n}", n=n)) for n in range(6)])
    worker = start_worker(threads=1)
    assert started.wait(5)
    # Everything was received: one running, the rest prefetched and invisible (visibility timeout 300 s).
    assert wait_until(lambda: queue_counts(sqs, url) == (0, 6), timeout=5)
    threading.Timer(0.5, release.set).start()
    worker.stop(timeout=10_000)
    assert ran == [0]
    # Without the requeue they would stay invisible for 300 s.
    assert queue_counts(sqs, url) == (5, 0)


def test_stop_ends_all_long_polls_together(sqs: Any, queue_prefix: str, queues: dict[str, Any], sink: Any) -> None:
    # 4 s long polls on two queues, out of step: a payment arriving after 1 s restarts the payments poll.
    # Stopping the receivers one after another would then wait for the payments poll and then a fresh
    # notifications poll (about 6 s); stopping them all when shutdown begins costs one poll (about 3 s).
    config = dataclasses.replace(FAST, wait_time_seconds=4)
    broker = SQSBroker(sqs, catalogue=CATALOGUE, prefix=queue_prefix, config=config, dead_letter_sink=sink)
    ran = threading.Event()
    dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")(lambda env: ran.set())
    dramatiq.actor(broker=broker, queue_name="notifications", actor_name="process_notification")(lambda env: None)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    time.sleep(1.0)
    broker.enqueue(message(envelope("cus_1")))
    assert ran.wait(3)
    time.sleep(1.0)
    started = time.monotonic()
    worker.stop(timeout=10_000)
    broker.close()
    assert time.monotonic() - started < 4.5
