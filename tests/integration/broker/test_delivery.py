"""Order within a group, parallelism across groups, deduplication, batching."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq

from engine.broker.broker import SQSBroker
from engine.broker.call_counter import CallCounter
from engine.broker.ids import deduplication_id
from tests.integration.broker.helpers import drain, envelope, message, queue_counts, wait_until


def test_fifo_order_within_group_and_parallel_across_groups(
    broker: SQSBroker, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    spans: dict[str, list[tuple[int, float, float]]] = {"cus_a": [], "cus_b": []}
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        start = time.monotonic()
        time.sleep(0.15)
        with lock:
            spans[env["group_id"]].append((env["data"]["n"], start, time.monotonic()))

    # Interleaved so that one receive batch holds several messages of each group.
    broker.enqueue_many([message(envelope(g, n=n)) for n in range(4) for g in ("cus_a", "cus_b")])
    start_worker(threads=4)
    assert wait_until(lambda: sum(map(len, spans.values())) == 8, timeout=20)

    for group, runs in spans.items():
        assert [n for n, _, _ in runs] == [0, 1, 2, 3], group
        for (_, _, end), (_, start, _) in itertools.pairwise(runs):
            assert start >= end, f"{group}: a later message started before the earlier one finished"
    a, b = spans["cus_a"], spans["cus_b"]
    overlaps = sum(1 for _, s1, e1 in a for _, s2, e2 in b if s1 < e2 and s2 < e1)
    assert overlaps >= 1, "the two groups never ran in parallel"


def test_same_scope_is_deduplicated_and_replay_suffix_is_not(sqs: Any, broker: SQSBroker) -> None:
    broker.declare_queue("payments")
    scope = "sub:dev|key:abc"
    broker.enqueue(message(envelope("cus_1", scope=scope)))
    broker.enqueue(message(envelope("cus_1", scope=scope)))
    url = broker.queue_url("payments")
    assert queue_counts(sqs, url) == (1, 0)
    broker.enqueue(message(envelope("cus_1", scope=scope), dedup_suffix=":replay:1"))
    got = drain(sqs, url)
    assert [m["Attributes"]["MessageDeduplicationId"] for m in got] == [
        deduplication_id(scope),
        deduplication_id(scope) + ":replay:1",
    ]
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"cus_1"}


def test_batched_io_stays_under_a_third_of_a_call_per_message(
    broker: SQSBroker, counter: CallCounter, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    done = threading.Event()
    seen: list[int] = []
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:
        with lock:
            seen.append(env["data"]["n"])
            if len(seen) == 100:
                done.set()

    broker.queue_url("payments")
    broker.visibility_timeout("payments")
    counter.reset()
    # One group per message: FIFO batches of 10 need 10 distinct groups in flight.
    broker.enqueue_many([message(envelope(f"cus_{i}", n=i)) for i in range(100)])
    start_worker(threads=8)
    assert done.wait(20)
    broker.deleter.flush()
    calls = counter.snapshot()
    assert calls["SendMessageBatch"] == 10
    data_calls = counter.total("SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch")
    assert data_calls / 100 <= 0.45, calls  # 0.3 is the steady-state floor; a short run pays for ramp-up
    assert "SendMessage" not in calls and "DeleteMessage" not in calls


def test_standard_queue_carries_envelopes_without_group(
    sqs: Any, broker: SQSBroker, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    got: list[dict[str, Any]] = []

    @dramatiq.actor(broker=broker, queue_name="notifications", actor_name="process_notification")
    def process_notification(env: dict[str, Any]) -> None:
        got.append(env)

    env = envelope(kind="notification", to="merchant")
    sent = broker.enqueue(message(env, "notifications"))
    assert sent.message_id == env.message_id
    # The plain Dramatiq way works too: the actor's only argument is the envelope dict.
    other = envelope(kind="notification", to="customer")
    assert process_notification.send(other.to_arg()).message_id == other.message_id
    start_worker(threads=1)
    assert wait_until(lambda: len(got) == 2, timeout=10)
    by_id = {e["message_id"]: e["data"] for e in got}
    assert by_id == {env.message_id: {"to": "merchant"}, other.message_id: {"to": "customer"}}
