"""Retry by visibility, redrive after three receives, poison, explicit dead letters, partial batch failures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq

from engine.broker.broker import SQSBroker
from engine.broker.call_counter import CallCounter
from engine.broker.dead_letters import MemoryDeadLetterSink
from engine.broker.errors import DeadLetterRequested
from tests.integration.broker.helpers import drain, envelope, message, queue_counts, wait_until


class Transient(Exception):
    """Stands for a dependency hiccup."""


def test_failed_message_is_retried_by_visibility_not_resent(
    broker: SQSBroker, counter: CallCounter, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    calls: list[tuple[int, float]] = []

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        calls.append((len(calls) + 1, time.monotonic()))
        if len(calls) == 1:
            raise Transient("stripe 503")

    receive_counts: list[int] = []

    class Spy(dramatiq.Middleware):
        def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
            receive_counts.append(message.options["receive_count"])

    broker.add_middleware(Spy())
    broker.enqueue(message(envelope("cus_1")))
    counter.reset()
    start_worker(threads=2)
    assert wait_until(lambda: len(calls) == 2, timeout=15)
    broker.join("payments", timeout=5000)
    assert receive_counts == [1, 2]
    snapshot = counter.snapshot()
    assert "SendMessage" not in snapshot and "SendMessageBatch" not in snapshot, snapshot
    assert snapshot.get("ChangeMessageVisibilityBatch", 0) >= 1


def test_always_failing_message_reaches_dlq_after_three_receives(
    sqs: Any,
    broker: SQSBroker,
    sink: MemoryDeadLetterSink,
    start_worker: Callable[..., dramatiq.Worker],
) -> None:
    attempts: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        attempts.append(1)
        raise Transient("card network down")

    env = envelope("cus_9")
    broker.enqueue(message(env))
    start_worker(threads=2)
    records = sink.wait_for(1, timeout=20)
    assert len(records) == 1
    record = records[0]
    assert (record.source, record.attempts, record.error_class) == ("redrive", 3, "Transient")
    assert record.job_id == env.job_id and record.kind == "payment" and record.group_id == "cus_9"
    assert "card network down" in record.error_message and "Transient" in (record.traceback or "")
    # The broker set visibility 0; SQS (moto) moves it to the DLQ on the next receive.
    dlq_url = broker.dlq_url("payments")
    assert wait_until(lambda: queue_counts(sqs, dlq_url)[0] == 1, timeout=10)
    assert len(attempts) == 3
    moved = drain(sqs, dlq_url)
    assert json.loads(moved[0]["Body"])["message_id"] == env.message_id
    assert queue_counts(sqs, broker.queue_url("payments")) == (0, 0)


def test_poison_goes_to_dlq_at_once_with_reason(
    sqs: Any,
    broker: SQSBroker,
    sink: MemoryDeadLetterSink,
    start_worker: Callable[..., dramatiq.Worker],
) -> None:
    ran: list[str] = []

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        ran.append(env["message_id"])

    url = broker.queue_url("payments")
    unknown = envelope("cus_p").to_arg() | {"actor": "no_such_actor"}
    bodies = {
        "undecodable": "not json {",
        "schema_invalid": json.dumps({"version": 1}),
        "unknown_actor": json.dumps(unknown),
    }
    for i, body in enumerate(bodies.values()):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=f"p{i}", MessageDeduplicationId=f"d{i}")
    good = envelope("cus_ok")
    broker.enqueue(message(good))
    start_worker(threads=2)
    records = sink.wait_for(3, timeout=10)
    assert sorted(r.error_message.split(":")[0] for r in records) == sorted(bodies)
    assert all(r.source == "poison" and r.attempts == 1 for r in records)
    assert wait_until(lambda: ran == [good.message_id], timeout=10)
    dlq = drain(sqs, broker.dlq_url("payments"))
    assert sorted(m["Body"] for m in dlq) == sorted(bodies.values())
    assert all(m["Attributes"]["MessageDeduplicationId"].startswith("dlq:") for m in dlq)
    assert {m["MessageAttributes"]["dead_letter_source"]["StringValue"] for m in dlq} == {"poison"}
    broker.join("payments", timeout=5000)


def test_explicit_dead_letter_skips_retries(
    sqs: Any,
    broker: SQSBroker,
    sink: MemoryDeadLetterSink,
    start_worker: Callable[..., dramatiq.Worker],
) -> None:
    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        raise DeadLetterRequested("unknown currency")

    broker.enqueue(message(envelope("cus_x")))
    start_worker(threads=1)
    (record,) = sink.wait_for(1, timeout=10)
    assert (record.source, record.attempts) == ("explicit", 1)
    assert wait_until(lambda: queue_counts(sqs, broker.dlq_url("payments"))[0] == 1, timeout=5)


def test_delete_batch_with_stale_receipt_handle_fails_only_that_entry(sqs: Any, broker: SQSBroker) -> None:
    broker.declare_queue("payments")
    url = broker.queue_url("payments")
    broker.enqueue_many([message(envelope(f"cus_{i}")) for i in range(3)])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(received) == 3
    for raw in received[:2]:
        broker.deleter.add(url, raw["ReceiptHandle"])
    broker.deleter.add(url, "stale-receipt-handle")
    broker.deleter.flush(url)
    assert [(u, e.code) for u, e in broker.deleter.failures] == [(url, "ReceiptHandleIsInvalid")]
    assert queue_counts(sqs, url) == (0, 1)  # the third, never deleted, is still in flight


def test_failure_in_one_group_keeps_order_and_does_not_block_others(
    broker: SQSBroker, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    order: dict[str, list[int]] = {}
    attempts: dict[int, int] = {}
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        n = env["data"]["n"]
        with lock:
            attempts[n] = attempts.get(n, 0) + 1
            first = attempts[n] == 1
        if first and n in (0, 5):  # the head of cus_0 and the second message of cus_1 fail once
            raise Transient("flaky")
        with lock:
            order.setdefault(env["group_id"], []).append(n)

    envs = [envelope(f"cus_{i % 4}", n=i) for i in range(12)]
    broker.enqueue_many([message(e) for e in envs])
    start_worker(threads=4)
    assert wait_until(lambda: sum(map(len, order.values())) == 12, timeout=20)
    broker.join("payments", timeout=10_000)
    assert order == {f"cus_{g}": [g, g + 4, g + 8] for g in range(4)}
    assert attempts[0] == 2 and attempts[5] == 2
    assert all(count == 1 for n, count in attempts.items() if n not in (0, 5))
