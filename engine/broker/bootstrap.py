"""One place that builds the broker for a process, before any actor module is imported.

Actors call ``dramatiq.get_broker()`` when their module is imported, so the order is: build the broker,
:func:`dramatiq.set_broker`, then import actor modules (:func:`install_broker` does the first two).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import dramatiq

from config.settings import Settings
from engine.broker.broker import SQSBroker
from engine.broker.client import make_sqs_client
from engine.broker.config import BrokerConfig
from engine.broker.dead_letters import DeadLetterSink, LoggingDeadLetterSink
from engine.broker.errors import DeadLetterRequested
from engine.broker.queues import QueueCatalogue
from engine.errors import PoisonError
from engine.runtime.endpoints import Endpoints


def build_broker(
    settings: Settings, endpoints: Endpoints, catalogue: QueueCatalogue, sink: DeadLetterSink | None = None
) -> SQSBroker:
    """An :class:`SQSBroker` for the configured endpoint, prefix and timings, serving ``catalogue``'s queues.

    Raises:
        engine.runtime.endpoints.NothingRunningError: no SQS endpoint is running or configured.
    """
    return SQSBroker(
        make_sqs_client(endpoints),
        catalogue=catalogue,
        prefix=settings.queue_prefix,
        config=BrokerConfig.from_settings(settings),
        dead_letter_sink=sink or LoggingDeadLetterSink(),
        # The failure taxonomy's "poison" raised by a stage: never retried (docs/design.md, "Failure taxonomy").
        dead_letter_exceptions=(DeadLetterRequested, PoisonError),
    )


def install_broker(broker: SQSBroker, actor_modules: Iterable[str] = ()) -> SQSBroker:
    """Make ``broker`` the global Dramatiq broker, then import ``actor_modules`` (which declare on it)."""
    dramatiq.set_broker(broker)
    for name in actor_modules:
        importlib.import_module(name)
    return broker
