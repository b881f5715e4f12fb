"""A gated consumer (engine/broker/consumer.py, ``gate``): while its gate is shut it receives nothing and gives
back what it has not started; half-open it takes one message at a time; open again it takes everything."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq

from engine.broker.broker import SQSBroker
from tests.integration.broker.helpers import envelope, message, queue_counts, wait_until


class Gate:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self) -> str:
        return self.mode


def test_a_shut_gate_takes_nothing_and_gives_back_what_it_holds(sqs: Any, broker: SQSBroker) -> None:
    @dramatiq.actor(broker=broker, queue_name="payments", actor_name="process_payment")
    def process_payment(env: dict[str, Any]) -> None:  # never run: the test plays Dramatiq's worker
        raise AssertionError("not run")

    url = broker.queue_url("payments")
    gate = Gate("all")
    broker.set_gate("payments.fifo", gate)
    broker.enqueue_many([message(envelope(f"cus_{i}")) for i in range(6)])
    consumer = broker.consume("payments", prefetch=20, timeout=100)
    try:
        assert wait_until(lambda: consumer.held_count() == 6, timeout=10)
        started = next(consumer)  # handed to Dramatiq: running, so kept
        assert started is not None
        gate.mode = "none"
        assert wait_until(lambda: consumer.held_count() == 1, timeout=5)  # the 5 unstarted ones given back
        assert wait_until(lambda: queue_counts(sqs, url) == (5, 1), timeout=5)
        threading.Event().wait(2.5)  # a shut gate receives nothing, though messages are visible
        assert consumer.held_count() == 1 and queue_counts(sqs, url) == (5, 1)
        consumer.ack(started)
        gate.mode = "probe"  # one message, and only while nothing else is held
        assert wait_until(lambda: consumer.held_count() == 1, timeout=5)
        threading.Event().wait(1.5)
        assert consumer.held_count() == 1
        gate.mode = "all"
        assert wait_until(lambda: consumer.held_count() == 5, timeout=10)
    finally:
        consumer.close()
