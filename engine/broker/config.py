"""The broker's tunables, read from the engine settings (or given directly in tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings


@dataclass(frozen=True)
class BrokerConfig:
    """Timing knobs of :class:`engine.broker.broker.SQSBroker`.

    ``wait_time_seconds``: long-polling wait of each ReceiveMessage (0-20).  ``heartbeat_seconds``: longest pause
    between visibility extensions of messages still held by a worker.  ``delete_flush_seconds``: longest an ack
    waits to join a DeleteMessageBatch.  ``receive_pause_seconds``: how long a consumer waits after a ReceiveMessage
    SQS could not fill before asking again (fuller batches, fewer calls).  ``standard_batch_seconds``: that pause on
    a standard queue (notifications), and the longest an ack there waits for its DeleteMessageBatch.
    ``prefetch_margin``: how many messages a
    worker process may hold beyond its threads (:class:`engine.broker.capacity.Capacity`).  ``backoff_*``: retry
    backoff (full jitter).  ``max_receive_count``: the queues' RedrivePolicy maxReceiveCount (the receive at which a
    failure is recorded as a dead letter).
    """

    wait_time_seconds: int = 20
    heartbeat_seconds: float = 60.0
    delete_flush_seconds: float = 0.05
    receive_pause_seconds: float = 0.2
    standard_batch_seconds: float = 1.0
    prefetch_margin: int = 10
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 300.0
    max_receive_count: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.wait_time_seconds <= 20:
            raise ValueError("wait_time_seconds must be within 0..20 (SQS's long-polling limit)")
        pauses = (self.delete_flush_seconds, self.receive_pause_seconds, self.standard_batch_seconds)
        if self.heartbeat_seconds <= 0 or min(pauses) < 0:
            raise ValueError("heartbeat_seconds must be > 0; delete_flush_seconds and the pauses >= 0")
        if self.prefetch_margin < 0:
            raise ValueError("prefetch_margin must be >= 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerConfig:
        """The knobs from ``PAYMENTS_SQS_*`` and ``PAYMENTS_RETRY_*`` settings."""
        return cls(
            wait_time_seconds=settings.sqs.wait_time_seconds,
            heartbeat_seconds=settings.sqs.heartbeat_seconds,
            delete_flush_seconds=settings.sqs.delete_flush_seconds,
            receive_pause_seconds=settings.sqs.receive_pause_seconds,
            standard_batch_seconds=settings.sqs.standard_batch_seconds,
            prefetch_margin=settings.sqs.prefetch_margin,
            backoff_base_seconds=settings.retry.backoff_base_seconds,
            backoff_max_seconds=settings.retry.backoff_max_seconds,
            max_receive_count=settings.sqs.max_receive_count,
        )
