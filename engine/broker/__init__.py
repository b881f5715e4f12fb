"""The engine's Dramatiq broker for SQS (FIFO and standard queues).

Build one with :func:`engine.broker.bootstrap.build_broker` (or :class:`SQSBroker` directly), send
:class:`Envelope` messages, run a Dramatiq ``Worker``.  Design notes: ``docs/design/broker.md``.
"""

from engine.broker.broker import SQSBroker, default_broker_middleware
from engine.broker.config import BrokerConfig
from engine.broker.dead_letters import (
    DeadLetterRecord,
    DeadLetterSink,
    LoggingDeadLetterSink,
    MemoryDeadLetterSink,
)
from engine.broker.envelope import Envelope, parse_body, to_message
from engine.broker.errors import BatchSendError, BrokerError, DeadLetterRequested, PoisonMessage
from engine.broker.ids import deduplication_id, message_group_id
from engine.broker.queues import NOTIFICATIONS, QueueCatalogue, QueueSpec, provision, queue_depths

__all__ = [
    "NOTIFICATIONS",
    "BatchSendError",
    "BrokerConfig",
    "BrokerError",
    "DeadLetterRecord",
    "DeadLetterRequested",
    "DeadLetterSink",
    "Envelope",
    "LoggingDeadLetterSink",
    "MemoryDeadLetterSink",
    "PoisonMessage",
    "QueueCatalogue",
    "QueueSpec",
    "SQSBroker",
    "deduplication_id",
    "default_broker_middleware",
    "message_group_id",
    "parse_body",
    "provision",
    "queue_depths",
    "to_message",
]
