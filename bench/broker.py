"""Broker scenario: send + receive + ack of N messages through a Dramatiq no-op actor.

Measured: SQS API calls per message (SendMessage*, ReceiveMessage, DeleteMessage*, counted with a botocore hook)
and messages per second, for the engine's ``SQSBroker`` on the FIFO ``payments`` queue (bulk enqueue with
SendMessageBatch) and on the standard ``notifications`` queue, and for the baseline ``dramatiq_sqs`` on a standard
queue at the same local endpoint with the same no-op actor and worker settings.  Everything runs against one
local AWS endpoint (``LocalAwsServer``) started here.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import dramatiq

from bench.common import Figure
from engine.broker.broker import SQSBroker
from engine.broker.call_counter import CallCounter
from engine.broker.config import BrokerConfig
from engine.broker.dead_letters import MemoryDeadLetterSink
from engine.broker.envelope import Envelope, to_message
from engine.broker.queues import provision
from pipelines.registry import CATALOGUE
from sandbox.embedded.local_aws import LocalAwsServer

NAME = "broker"
DATA_OPERATIONS = ("SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch")
THREADS = 8
#: FIFO message groups the payments run spreads over (one customer each); batches of 10 need ≥ 10 groups.
GROUPS = 200
#: Long enough for the slow path, short enough that a stuck run ends (the figure then says so).
TIMEOUT_SECONDS = 300.0


@dataclass
class Run:
    label: str
    messages: int
    seconds: float
    calls: dict[str, int]

    @property
    def calls_per_message(self) -> float:
        return sum(self.calls.get(op, 0) for op in DATA_OPERATIONS) / self.messages

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds


def _client(url: str) -> Any:
    return boto3.client(
        "sqs", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    )


def _drive(
    label: str, broker: dramatiq.Broker, counter: CallCounter, n: int, send: Callable[[], object], done: threading.Event
) -> Run:
    """Send (timed), run a worker until the no-op actor saw ``n`` messages, stop; return the figures."""
    counter.reset()
    started = time.perf_counter()
    send()
    worker = dramatiq.Worker(broker, worker_threads=THREADS, worker_timeout=100)
    worker.start()
    finished = done.wait(TIMEOUT_SECONDS)
    if isinstance(broker, SQSBroker):
        broker.deleter.flush()  # acks still buffered are part of the work
    elapsed = time.perf_counter() - started
    calls = counter.snapshot()
    worker.stop(timeout=30_000)
    broker.close()
    if not finished:
        raise RuntimeError(f"{label}: not all {n} messages were processed within {TIMEOUT_SECONDS:.0f} s")
    return Run(label, n, elapsed, calls)


def _noop_actor(broker: dramatiq.Broker, queue: str, name: str, n: int) -> threading.Event:
    done = threading.Event()
    seen = [0]
    lock = threading.Lock()

    def noop(*_: Any) -> None:
        with lock:
            seen[0] += 1
            if seen[0] >= n:
                done.set()

    dramatiq.actor(broker=broker, queue_name=queue, actor_name=name)(noop)
    return done


def run_engine(url: str, n: int, queue: str) -> Run:
    """SQSBroker on ``queue`` (``payments`` = FIFO, ``notifications`` = standard), bulk enqueue."""
    sqs = _client(url)
    prefix = f"b{uuid.uuid4().hex[:8]}-"
    spec = next(s for s in CATALOGUE if s.base == queue)
    provision(sqs, prefix, (spec,))
    counter = CallCounter().attach(sqs)
    broker = SQSBroker(
        sqs,
        catalogue=CATALOGUE,
        prefix=prefix,
        config=BrokerConfig(wait_time_seconds=1, delete_flush_seconds=0.05),
        dead_letter_sink=MemoryDeadLetterSink(),
    )
    done = _noop_actor(broker, queue, f"process_{spec.kind}", n)
    broker.queue_url(queue)
    broker.visibility_timeout(queue)
    messages = [
        to_message(
            Envelope.new(
                kind=spec.kind, data={"n": i}, idempotency_scope=f"bench:{prefix}:{i}", group_id=f"cus_{i % GROUPS}"
            ),
            queue,
        )
        for i in range(n)
    ]
    kind = "FIFO" if spec.fifo else "standard"
    return _drive(f"SQSBroker {kind}", broker, counter, n, lambda: broker.enqueue_many(messages), done)


def run_dramatiq_sqs(url: str, n: int) -> Run:
    """The baseline: ``dramatiq_sqs.SQSBroker`` on a standard queue, one ``actor.send`` per message."""
    from dramatiq_sqs import SQSBroker as DramatiqSQSBroker

    namespace = f"b{uuid.uuid4().hex[:8]}"
    broker = DramatiqSQSBroker(
        namespace=namespace,
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    counter = CallCounter().attach(broker.sqs.meta.client)
    done = _noop_actor(broker, "bench", "noop", n)
    actor = broker.get_actor("noop")
    broker._ensure_queue("bench")  # create the queue before timing, as provisioning is outside our timing too

    def send() -> None:
        for i in range(n):
            actor.send({"n": i})

    return _drive("dramatiq_sqs standard", broker, counter, n, send, done)


def run(quick: bool) -> list[Figure]:
    """Run the three measurements on one local endpoint and return calls/message and msgs/s figures."""
    n = int(os.environ.get("BENCH_BROKER_MESSAGES", "300" if quick else "2000"))
    server = LocalAwsServer(port=0)
    url = server.start()
    try:
        baseline = run_dramatiq_sqs(url, n)
        fifo = run_engine(url, n, "payments")
        standard = run_engine(url, n, "notifications")
    finally:
        server.stop()
    figures: list[Figure] = []
    for ours in (fifo, standard):
        note = f"N={n}, {THREADS} threads; calls: {ours.calls}; baseline calls: {baseline.calls}"
        figures.append(
            Figure(
                NAME,
                f"{ours.label} SQS calls/msg",
                "calls",
                ours.calls_per_message,
                baseline.calls_per_message,
                baseline.label,
                "lower",
                note,
            )
        )
        figures.append(
            Figure(
                NAME,
                f"{ours.label} throughput",
                "msgs/s",
                ours.messages_per_second,
                baseline.messages_per_second,
                baseline.label,
                "higher",
                note,
            )
        )
    return figures
