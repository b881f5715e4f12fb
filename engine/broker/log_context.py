"""Dramatiq middleware: every log line written while a message is processed carries its job's correlation id."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from engine.runtime.logs import bind, unbind


class LogContext(Middleware):
    """Binds the envelope's ``correlation_id`` and ``job_id`` to the worker thread for the message's lifetime."""

    def __init__(self) -> None:
        # before/after run on the same worker thread; the tokens never go near the message (it may be re-encoded).
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        envelope = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
        self._local.tokens = bind(envelope.get("correlation_id"), envelope.get("job_id"))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        tokens = getattr(self._local, "tokens", None)
        if tokens is not None:
            unbind(tokens)
            self._local.tokens = None

    after_skip_message = after_process_message
