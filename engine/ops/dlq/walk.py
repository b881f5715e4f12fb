"""One walk over a DLQ for an operator's command (replay, purge).

The walk receives the DLQ in batches, joins each message with its reason row and job, and hands over the entries
a filter matches.  Every message it receives stays held (invisible) until the walk ends, so each is seen once
however the batches fall; when the walk ends, however it ends, every held message not marked finished (moved or
deleted by the command) is released (visibility 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

from engine.broker.queues import QueueSpec
from engine.ops.dlq.entries import DlqEntry, DlqFilter, join
from engine.ops.dlq.messages import DlqMessage, receive, release
from engine.runtime.container import Container


class DlqWalk:
    """Use as a context manager: ``with DlqWalk(c, spec, url, hold) as walk: for entry in walk.matching(flt): …``.

    Raises (from :meth:`matching`) :class:`botocore.exceptions.ClientError` when SQS refuses a receive and
    :class:`sqlalchemy.exc.SQLAlchemyError` when the database fails.
    """

    def __init__(self, c: Container, spec: QueueSpec, url: str, hold_seconds: int) -> None:
        self._c = c
        self._spec = spec
        self._url = url
        self._hold_seconds = hold_seconds
        self._held: dict[str, DlqMessage] = {}
        self._finished: set[str] = set()

    def __enter__(self) -> DlqWalk:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        release(self._c.sqs, self._url, [m for mid, m in self._held.items() if mid not in self._finished])

    def matching(self, flt: DlqFilter) -> Iterator[DlqEntry]:
        """The entries ``flt`` matches, each once, until a receive brings nothing new."""
        prefix = self._c.settings.queue_prefix
        while True:
            batch = receive(self._c.sqs, self._spec, prefix, self._url, self._hold_seconds)
            fresh = [m for m in batch if m.message_id not in self._held]
            if not fresh:
                return
            with self._c.db.connect() as conn:
                entries = join(conn, fresh)
            for entry in entries:
                self._held[entry.message.message_id] = entry.message
                if flt.matches(entry):
                    yield entry

    def finished(self, entry: DlqEntry) -> None:
        """``entry``'s message is gone from the DLQ (moved or deleted): it is not released at the end."""
        self._finished.add(entry.message.message_id)
