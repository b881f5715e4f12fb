"""Batched SQS calls with entry-by-entry handling of partial failures.

SQS batch calls succeed as a whole while individual entries fail (``Failed`` in the answer).  These helpers
retry the failed entries that SQS says are not the sender's fault, and report the rest precisely.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from engine.broker.errors import FailedEntry

log = logging.getLogger(__name__)

BATCH_SIZE = 10
#: Retries of the failed entries of one batch call (not of the whole call; botocore retries that itself).
ENTRY_RETRIES = 2
_RETRY_PAUSE = 0.05

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = BATCH_SIZE) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def call_batch(
    call: Callable[[list[dict[str, Any]]], dict[str, Any]], entries: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, FailedEntry]]:
    """Run one batch ``call`` (≤ 10 entries, each with a unique ``Id``), retrying failed entries.

    Entries failing with ``SenderFault: false`` are retried up to :data:`ENTRY_RETRIES` times; sender faults
    are not retried (the same entry would fail again).

    Returns:
        ``(successful, failed)``: SQS's ``Successful`` items, and the entries that still failed by ``Id``.
    Raises:
        botocore.exceptions.ClientError: the call as a whole failed (after botocore's own retries).
    """
    successful: list[dict[str, Any]] = []
    failed: dict[str, FailedEntry] = {}
    pending = entries
    for attempt in range(ENTRY_RETRIES + 1):
        if not pending:
            break
        answer = call(pending)
        successful.extend(answer.get("Successful", []))
        by_id = {e["Id"]: e for e in pending}
        retry: list[dict[str, Any]] = []
        for item in answer.get("Failed", []):
            entry = FailedEntry(
                id=item["Id"],
                code=item.get("Code", "Unknown"),
                message=item.get("Message", ""),
                sender_fault=bool(item.get("SenderFault", False)),
            )
            failed[entry.id] = entry
            if not entry.sender_fault and attempt < ENTRY_RETRIES and entry.id in by_id:
                retry.append(by_id[entry.id])
        for entry_again in retry:
            failed.pop(entry_again["Id"], None)
        pending = retry
        if pending:
            time.sleep(_RETRY_PAUSE * (attempt + 1))
    return successful, failed


class DeleteBuffer:
    """Buffers acks into DeleteMessageBatch calls: a batch leaves at 10 entries or ``flush_seconds`` (or the
    ``flush_seconds`` its :meth:`add` named) after its first entry arrived, and on :meth:`flush`/:meth:`close`.
    Thread-safe; one flusher thread per buffer.

    Entries SQS refuses for good (a stale receipt handle: the message was redelivered meanwhile) are logged
    and kept in :attr:`failures` (bounded) — the message will be received again, and the job's own
    idempotency makes the repeat harmless.
    """

    MAX_FAILURES_KEPT = 1000

    def __init__(self, sqs: Any, flush_seconds: float) -> None:
        self._sqs = sqs
        self._flush_seconds = flush_seconds
        self._pending: dict[str, list[str]] = {}
        #: When each queue's pending batch must leave (monotonic), set by its first entry.
        self._due_at: dict[str, float] = {}
        self._cond = threading.Condition()
        self._closed = False
        self.failures: list[tuple[str, FailedEntry]] = []
        self._thread = threading.Thread(target=self._run, name="sqs-delete-flusher", daemon=True)
        self._thread.start()

    def add(self, queue_url: str, receipt_handle: str, flush_seconds: float | None = None) -> None:
        """Schedule the deletion of one received message, within ``flush_seconds`` (default: the buffer's)."""
        window = self._flush_seconds if flush_seconds is None else flush_seconds
        ready: list[str] | None = None
        with self._cond:
            entries = self._pending.setdefault(queue_url, [])
            due = time.monotonic() + window
            # The batch leaves when its most urgent entry must: a short window is not held up by a longer one.
            self._due_at[queue_url] = min(due, self._due_at.get(queue_url, due)) if entries else due
            entries.append(receipt_handle)
            if len(entries) >= BATCH_SIZE:
                ready = entries[:BATCH_SIZE]
                del entries[:BATCH_SIZE]
                if entries:
                    self._due_at[queue_url] = time.monotonic() + window
                else:
                    self._due_at.pop(queue_url, None)
            else:
                self._cond.notify()
        if ready:
            # A full batch leaves from the acking thread at once: no reason to wait for the flusher.
            self._delete(queue_url, ready)

    def flush(self, queue_url: str | None = None) -> None:
        """Send every pending delete now (of ``queue_url`` only, when given)."""
        with self._cond:
            urls = [queue_url] if queue_url else list(self._pending)
            taken = {url: self._pending.pop(url, []) for url in urls}
            for url in urls:
                self._due_at.pop(url, None)
        for url, handles in taken.items():
            for chunk in chunks(handles):
                self._delete(url, list(chunk))

    def pending_count(self) -> int:
        """Deletes waiting to be sent."""
        with self._cond:
            return sum(len(v) for v in self._pending.values())

    def close(self) -> None:
        """Flush and stop the flusher thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while True:
            due: dict[str, list[str]] = {}
            with self._cond:
                if self._closed:
                    return
                if not self._due_at:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                wait = min(self._due_at.values()) - now
                if wait > 0:
                    self._cond.wait(timeout=wait)
                    continue
                for url, due_at in list(self._due_at.items()):
                    if due_at <= now:
                        due[url] = self._pending.pop(url, [])
                        del self._due_at[url]
            for url, handles in due.items():
                for chunk in chunks(handles):
                    self._delete(url, list(chunk))

    def _delete(self, queue_url: str, handles: list[str]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
        try:
            _, failed = call_batch(lambda es: self._sqs.delete_message_batch(QueueUrl=queue_url, Entries=es), entries)
        except Exception:
            # The messages become visible again after their timeout and are processed again (idempotently).
            log.exception("DeleteMessageBatch failed for %d message(s) on %s", len(entries), queue_url)
            return
        for entry in failed.values():
            log.warning("delete failed on %s: %s %s", queue_url, entry.code, entry.message)
            with self._cond:
                if len(self.failures) < self.MAX_FAILURES_KEPT:
                    self.failures.append((queue_url, entry))


def change_visibility(sqs: Any, queue_url: str, items: Iterable[tuple[str, int]]) -> dict[str, FailedEntry]:
    """Set the visibility of received messages, ``(receipt_handle, seconds)`` each, 10 per call.

    Returns:
        The entries that failed for good, keyed by receipt handle (e.g. the message was deleted or its receipt
        handle expired); the caller decides whether that matters.
    Raises:
        botocore.exceptions.ClientError: a whole call failed.
    """
    pairs = list(items)
    failures: dict[str, FailedEntry] = {}
    for chunk in chunks(pairs):
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": s} for i, (h, s) in enumerate(chunk)]
        _, failed = call_batch(lambda es: sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=es), entries)
        for entry_id, entry in failed.items():
            failures[chunk[int(entry_id)][0]] = entry
    return failures
