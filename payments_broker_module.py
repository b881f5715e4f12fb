"""The broker module for Dramatiq's own CLI: ``dramatiq payments_broker_module actors``.

Dramatiq imports the modules it is given in order, and actors bind to the global broker when their module is
imported.  Importing this module first builds the engine's SQS broker (settings, endpoints of the running or
configured stack, the queue catalogue, the database dead-letter sink, the log context) and makes it the global
broker, and installs the process's container, so the ``actors`` package imported next declares on SQS — not on
Dramatiq's default RedisBroker, which would consume nothing.  Every ``dramatiq`` flag then works
(``-p``, ``-t``, ``-Q``, ``--pid-file``, ``--log-file``, ``--worker-shutdown-timeout``, ``-v``).

What ``payments worker`` adds and this module does not: the queue check before consuming (``payments queues
check`` does the same by hand), the liveness heartbeat and the outbox relay sidecars, and the metrics endpoint.
"""

from __future__ import annotations

import dramatiq

from config.settings import get_settings
from engine.broker.bootstrap import build_broker
from engine.broker.log_context import LogContext
from engine.runtime.container import bootstrap, use_process_container
from engine.runtime.worker import dead_letter_sink

container = bootstrap(get_settings())
use_process_container(container)
broker = build_broker(container.settings, container.endpoints, container.queues, dead_letter_sink(container))
broker.add_middleware(LogContext())
dramatiq.set_broker(broker)

__all__ = ["broker", "container"]
