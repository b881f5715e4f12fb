"""Logging: JSON lines (one object per event) or plain text, per ``PAYMENTS_LOG_FORMAT``."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import dramatiq

from config.settings import Settings
from engine.domain.pan import contains_pan, mask_pans

#: Set per request (ingest) and per message (worker); every log line of that work carries them.
correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)


class ContextFilter(logging.Filter):
    """Adds ``correlation_id`` and ``job_id`` from the context to every record that does not carry its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = correlation_id.get()
        if getattr(record, "job_id", None) is None:
            record.job_id = job_id.get()
        return True


def _identifiers_only(arg: Any) -> Any:
    """A Dramatiq message as its identifiers: its default text is the actor call with every argument (the whole
    envelope: e-mail, description, metadata)."""
    if isinstance(arg, (dramatiq.Message, dramatiq.MessageProxy)):
        return f"{arg.actor_name} message {arg.message_id}"
    return arg


class RedactingFilter(logging.Filter):
    """Log identifiers, never message arguments or card numbers (issue 14 item 4).

    A Dramatiq message among a record's arguments is logged as ``{actor} message {id}``; a line or traceback that
    still holds what looks like a card number has it replaced by ``[card number redacted]``.  Installed on the
    process's log handler by :func:`configure_logging`, so it covers every logger, the libraries' included.
    """

    _FORMATTER = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_identifiers_only(a) for a in record.args)
        message = record.getMessage()
        if contains_pan(message):
            record.msg, record.args = mask_pans(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_pans(self._FORMATTER.formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message and any ``extra`` fields of the record."""

    _RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_") and value is not None:
                data[key] = value
        if record.exc_text:
            data["exc_info"] = record.exc_text
        elif record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


#: Libraries whose INFO lines are chatter (the Stripe SDK logs every request, httpx every call): WARNING and up only.
LIBRARY_LOGGERS = ("botocore", "boto3", "urllib3", "werkzeug", "stripe", "httpx", "httpcore")


def log_format(settings: Settings, stream: Any = None) -> str:
    """``json`` or ``text``: the setting, or with ``auto`` (the default) text on a terminal and JSON otherwise."""
    wanted = settings.log.format.lower()
    if wanted in ("json", "text"):
        return wanted
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure_logging(settings: Settings, *, log_file: str | None = None, verbosity: int = 0) -> None:
    """Configure the root logger once for this process: one handler and one formatter for every logger.

    ``log_file`` writes there instead of standard error; ``verbosity`` > 0 lowers the level to DEBUG (``-v``).
    """
    if log_file:
        handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        fmt = settings.log.format.lower() if settings.log.format.lower() in ("json", "text") else "json"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = log_format(settings)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity > 0 else settings.log.level.upper())
    for noisy in LIBRARY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's own logging config gives its loggers handlers that bypass the filter above (its 500 tracebacks):
    # route them through the root handler instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def bind(correlation: str | None, job: str | None) -> tuple[Any, Any]:
    """Set the log context; returns tokens for :func:`unbind`."""
    return correlation_id.set(correlation), job_id.set(job)


def unbind(tokens: tuple[Any, Any]) -> None:
    correlation_id.reset(tokens[0])
    job_id.reset(tokens[1])
