"""The consumers' refill and their shared capacity (engine/broker/capacity.py, engine/broker/consumer.py): a worker
holds at most its threads plus a margin between all its queues, and refills as soon as one slot frees, asking SQS for
no more than the free slots."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import dramatiq

from engine.broker.broker import SQSBroker
from engine.broker.consumer import SQSConsumer
from tests.integration.broker.conftest import FAST
from tests.integration.broker.helpers import envelope, message, wait_until


class AskedFor:
    """Every ``MaxNumberOfMessages`` a client's ReceiveMessage asked for (a botocore event hook, not a patch)."""

    def __init__(self, sqs: Any) -> None:
        self.asked: list[int] = []
        self._lock = threading.Lock()
        sqs.meta.events.register("provide-client-params.sqs.ReceiveMessage", self._on_params)

    def _on_params(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.asked.append(int(params.get("MaxNumberOfMessages", 1)))


def _actors(broker: SQSBroker) -> None:
    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:  # never run: the test plays Dramatiq's worker
        raise AssertionError("not run")

    @dramatiq.actor(broker=broker, queue_name="notifications", actor_name="process_notification")
    def process_notification(env: dict[str, Any]) -> None:
        raise AssertionError("not run")


def _held_stays_at(consumers: list[SQSConsumer], expected: int, seconds: float) -> bool:
    """True when the consumers together hold exactly ``expected`` messages, and never more, for ``seconds``."""
    deadline = threading.Event()
    timer = threading.Timer(seconds, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            if sum(c.held_count() for c in consumers) != expected:
                return False
            deadline.wait(0.02)
    finally:
        timer.cancel()
    return True


def test_a_consumer_refills_one_freed_slot_at_once_and_never_holds_more_than_threads_plus_margin(
    sqs: Any, broker: SQSBroker
) -> None:
    _actors(broker)
    broker.config = replace(FAST, prefetch_margin=1)
    broker.set_worker_threads(2)  # capacity 3
    asked = AskedFor(sqs)
    broker.enqueue_many([message(envelope(f"cus_{i}", n=i)) for i in range(12)])
    consumer = broker.consume("payments", prefetch=4, timeout=100)
    try:
        assert wait_until(lambda: consumer.held_count() == 3, timeout=10)
        assert _held_stays_at([consumer], 3, 1.0), "held more than threads + margin, or did not keep it full"
        first = next(consumer)
        assert first is not None
        consumer.ack(first)  # one slot frees: the receiver takes one more at once (not waiting for ten)
        assert wait_until(lambda: broker.capacity(4).free() == 0 and consumer.held_count() == 3, timeout=5)
        assert max(asked.asked) <= 3, asked.asked  # never asked SQS for more than the free slots
        assert asked.asked[-1] == 1, asked.asked  # the refill asked for exactly the one slot that freed
    finally:
        consumer.close()


def test_two_queues_share_the_worker_capacity(sqs: Any, broker: SQSBroker) -> None:
    _actors(broker)
    broker.config = replace(FAST, prefetch_margin=2)
    broker.set_worker_threads(3)  # capacity 5 for both queues together
    broker.enqueue_many([message(envelope(f"cus_{i}")) for i in range(10)])
    broker.enqueue_many([message(envelope(kind="notification"), "notifications") for _ in range(10)])
    payments = broker.consume("payments", prefetch=6, timeout=100)
    notifications = broker.consume("notifications", prefetch=6, timeout=100)
    try:
        assert wait_until(lambda: payments.held_count() + notifications.held_count() == 5, timeout=10)
        assert _held_stays_at([payments, notifications], 5, 1.0)
        # Finishing work on one queue frees slots any queue may fill; the total stays bounded.
        for _ in range(3):
            m = next(payments) or next(notifications)
            assert m is not None
            (payments if m.queue_name == "payments" else notifications).ack(m)
        assert wait_until(lambda: payments.held_count() + notifications.held_count() == 5, timeout=10)
        assert _held_stays_at([payments, notifications], 5, 0.5)
    finally:
        payments.close()
        notifications.close()


def test_after_an_unfilled_receive_a_fifo_consumer_waits_for_finished_messages_before_asking_again(
    sqs: Any, broker: SQSBroker
) -> None:
    _actors(broker)
    broker.config = replace(FAST, receive_pause_seconds=3.0)
    broker.set_worker_threads(20)
    asked = AskedFor(sqs)
    broker.enqueue_many([message(envelope(f"cus_{i}")) for i in range(7)])
    consumer = broker.consume("payments", prefetch=40, timeout=100)
    try:
        # The first (idle) poll takes one, the next asks for ten and gets six: SQS had no more, so it pauses.
        assert wait_until(lambda: consumer.held_count() == 7, timeout=10)
        calls = len(asked.asked)
        broker.enqueue_many([message(envelope(f"cus_new_{i}")) for i in range(3)])
        threading.Event().wait(1.0)
        assert len(asked.asked) == calls, "asked again during the pause"
        assert consumer.held_count() == 7
        # Five finished messages end the pause early (their groups may have a next message): the new three come.
        for _ in range(5):
            m = next(consumer)
            assert m is not None
            consumer.ack(m)
        assert wait_until(lambda: consumer.held_count() == 5, timeout=1.5), "waited out the whole pause"
    finally:
        consumer.close()
