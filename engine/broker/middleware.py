"""The middleware that replaces Dramatiq's ``Retries`` on the SQS broker.

``Retries`` re-enqueues a *new* message on failure: on a FIFO queue that breaks the group's order and SQS never
counts receives, so RedrivePolicy cannot work.  :class:`VisibilityRetries` only marks the message failed; the
consumer's ``nack`` then leaves it invisible for a backoff (or dead-letters it).  See
:meth:`engine.broker.consumer.SQSConsumer.nack`.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware


class VisibilityRetries(Middleware):
    """Marks a message whose actor raised as failed so the consumer retries it by visibility.

    An exception listed in the actor's ``throws`` option (or :class:`engine.broker.errors.DeadLetterRequested`)
    means "never retry": the message is dead-lettered at once (source ``explicit``).
    """

    @property
    def actor_options(self) -> set[str]:
        # Declared so actors may set them; "throws" used to belong to Retries, which this replaces.
        return {"throws", "group_id", "dedup_scope", "dedup_suffix"}

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        actor = broker.actors.get(message.actor_name)
        throws = message.options.get("throws") or (actor.options.get("throws") if actor else None)
        if throws and isinstance(exception, throws):
            # Read by SQSConsumer.nack: skip the backoff, go to the DLQ now.
            message.dead_letter_now = True  # type: ignore[attr-defined]
        message.fail()
