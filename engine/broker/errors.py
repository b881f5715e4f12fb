"""Exceptions of the broker package, in the engine's one tree (:mod:`engine.errors`)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import PaymentsError, PoisonError


class BrokerError(PaymentsError):
    """Base class of every error raised by :mod:`engine.broker`."""


class PoisonMessage(PoisonError):
    """A received message that can never succeed: undecodable, schema-invalid, or for an unknown actor.

    The broker's kind of :class:`~engine.errors.PoisonError`, found before any actor runs: dead-lettered at once
    (source ``poison``).  ``reason`` is a short machine-readable code (``undecodable``, ``schema_invalid``,
    ``unknown_actor``).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FailedEntry:
    """One entry SQS refused inside a batch call."""

    id: str
    code: str
    message: str
    sender_fault: bool


class BatchSendError(BrokerError):
    """Some entries of a SendMessageBatch still failed after retrying them.

    ``failed`` maps the dramatiq message id to SQS's reason; ``sent`` lists the message ids that were sent.
    """

    def __init__(self, queue: str, failed: dict[str, FailedEntry], sent: list[str]) -> None:
        details = ", ".join(f"{mid}: {e.code} {e.message}" for mid, e in failed.items())
        super().__init__(f"{len(failed)} message(s) not sent to {queue}: {details}")
        self.queue = queue
        self.failed = failed
        self.sent = sent


class DeadLetterRequested(BrokerError):
    """Raised by an actor to send its message to the DLQ at once (source ``explicit``), without retries."""


class HeldBehindFailure(BrokerError):
    """Reason recorded for a message that SQS will dead-letter without it having run: it was received in a
    batch behind a failing message of its group, returned unrun each time, and its receives are exhausted."""
