"""A pinned patch of moto's SQS backend that keeps the local endpoint fast with a deep backlog.

Why: moto (5.0–5.2) keeps a queue as one list and rescans it on every call.  Each SendMessage computes the full
attribute dict (three O(n) scans for the approximate counts) three times and scans for duplicates; each
ReceiveMessage filters the whole list into "visible" messages, walks past every message of a blocked FIFO group
and recomputes all attributes for *each* message it returns (retention check); Delete and
ChangeMessageVisibility scan every message's receipt-handle history.  At a 10,000-message backlog that is tens
of milliseconds per call (see ``docs/design/local-sqs.md`` for the figures).

What :func:`apply` does: it replaces the storage and the hot methods of ``moto.sqs.models.Queue`` and
``SQSBackend`` with indexed, incremental bookkeeping, under one lock per queue:

* messages in arrival order (dict by sequence), an index receipt handle → message;
* a state per message (ready / in flight / delayed / gone) with O(1) counters for the approximate counts and a
  timer heap for visibility and delay expiry, processed lazily on each call;
* standard queues: a heap of ready messages by arrival; FIFO queues: a deque per message group, an in-flight
  count per group and a heap of deliverable groups by the arrival of their head message, so a receive touches
  only what it returns;
* a deduplication table kept for the 5-minute interval whether or not the first message was deleted (moto
  only dedups against stored messages), which answers a duplicate with the first message's MessageId and
  SequenceNumber, honours ``DeduplicationScope=messageGroup``, and is bypassed by redrive (moto silently drops
  a redriven message whose dedup id is stored in the FIFO DLQ);
* increasing FIFO sequence numbers (moto draws random ones);
* the 12-hour visibility limit counted from the latest receive (moto counts from the send);
* a FIFO receive fills its batch from one group first, as SQS documents (moto interleaves groups by arrival);
* receipt handles of deleted messages (for an idempotent repeated delete) kept for the last 100,000, not forever;
* received message snapshots that moto's global instance tracker does not retain (moto keeps every Message
  object, and every deepcopy of one, for the life of the process).

Semantics otherwise follow moto's (and SQS's): FIFO order per group, no delivery from a group with a message
in flight, several messages of one group in one receive, redrive to the DLQ on the receive after
``maxReceiveCount`` receives, long polling that returns as soon as one message is available.

The patch is written for moto ``>=5.0.20,<5.3`` (checked against 5.2.5).  :func:`apply` refuses other versions
(:class:`UnsupportedMotoVersion`) unless ``strict=False``, which logs a loud warning and leaves moto unpatched.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import PaymentsError

logger = logging.getLogger(__name__)

SUPPORTED_MIN = (5, 0, 20)
SUPPORTED_BELOW = (5, 3)
DEDUPLICATION_INTERVAL_MS = 300_000
DELETED_HANDLES_KEPT = 100_000
MAX_VISIBILITY_MS = 43_200_000
_SEQUENCE_BASE = 10**19  # 20-digit sequence numbers, as SQS prints them

READY, INFLIGHT, DELAYED, GONE = 0, 1, 2, 3

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}


class UnsupportedMotoVersion(PaymentsError):
    """The installed moto is not a version this patch was written and tested for."""


def _now_ms() -> float:
    # moto stamps messages with wall-clock milliseconds (unix_time_millis); use the same clock.
    return time.time() * 1000.0


def _parse_version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):  # "0rc1", "2.dev0": stop at the first non-numeric piece
            break
    return tuple(parts)


def version_supported(version: str) -> bool:
    """True when ``version`` is within the range this patch was written for (``>=5.0.20,<5.3``)."""
    v = _parse_version(version)
    return SUPPORTED_MIN <= v < SUPPORTED_BELOW


def is_applied() -> bool:
    """True while the patch is in place."""
    return bool(_originals)


# ----------------------------------------------------------------------------------------------------------
# Per-queue state
# ----------------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class QueueState:
    """The indexed bookkeeping of one queue; every field is guarded by ``cond``."""

    cond: threading.Condition = field(default_factory=lambda: threading.Condition(threading.RLock()))
    msgs: dict[int, Any] = field(default_factory=dict)  # arrival seq -> Message, in arrival order
    by_receipt: dict[str, Any] = field(default_factory=dict)
    ready_heap: list[tuple[int, int, Any]] = field(default_factory=list)  # standard: (seq, epoch, msg)
    groups: dict[str, deque[Any]] = field(default_factory=dict)  # FIFO: group -> messages in order
    group_inflight: dict[str, int] = field(default_factory=dict)
    group_heap: list[tuple[int, str]] = field(default_factory=list)  # FIFO: (head seq, group)
    timers: list[tuple[float, int, int, Any]] = field(default_factory=list)  # (at_ms, seq, epoch, msg)
    dedup: dict[str, tuple[float, str, str | None]] = field(default_factory=dict)
    dedup_order: deque[tuple[float, str]] = field(default_factory=deque)
    # Receipt handles of deleted messages, so a repeated delete succeeds as on SQS.  moto keeps them all in a
    # set for the life of the queue; we keep the most recent DELETED_HANDLES_KEPT (insertion-ordered dict).
    deleted: dict[str, None] = field(default_factory=dict)
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # by state
    next_seq: int = 1
    next_sequence_number: int = 1
    version: int = 0  # bumped whenever something may have become deliverable

    # -- state transitions -----------------------------------------------------------------------------
    def _set_state(self, msg: Any, state: int) -> None:
        self.counts[msg._fp_state] -= 1
        self.counts[state] += 1
        msg._fp_state = state
        msg._fp_epoch += 1

    def insert(self, queue: Any, msg: Any, now: float) -> None:
        seq = self.next_seq
        self.next_seq += 1
        msg._fp_seq = seq
        msg._fp_epoch = 0
        msg._fp_state = GONE
        self.counts[GONE] += 1
        self.msgs[seq] = msg
        if msg.delayed_until > now:
            self._set_state(msg, DELAYED)
            heapq.heappush(self.timers, (msg.delayed_until, seq, msg._fp_epoch, msg))
        elif msg.visible_at > now:
            # A redriven message still invisible from its last receive stays invisible in the DLQ too.
            self._set_state(msg, INFLIGHT)
            heapq.heappush(self.timers, (msg.visible_at, seq, msg._fp_epoch, msg))
        else:
            self._set_state(msg, READY)
        if queue.fifo_queue:
            group = msg.group_id or ""
            dq = self.groups.get(group)
            if dq is None:
                dq = self.groups[group] = deque()
                self.group_inflight[group] = 0
            dq.append(msg)
            if msg._fp_state == INFLIGHT:
                self.group_inflight[group] += 1
            if len(dq) == 1:
                self.push_group(group)
        elif msg._fp_state == READY:
            heapq.heappush(self.ready_heap, (seq, msg._fp_epoch, msg))
        self.version += 1

    def remove(self, queue: Any, msg: Any) -> None:
        """Forget ``msg`` (deleted, purged, expired or moved to the DLQ)."""
        was = msg._fp_state
        if was == GONE:
            return
        self._set_state(msg, GONE)
        self.msgs.pop(msg._fp_seq, None)
        for handle in msg.all_receipt_handles:
            if handle is not None and self.by_receipt.get(handle) is msg:
                del self.by_receipt[handle]
        if queue.fifo_queue:
            group = msg.group_id or ""
            dq = self.groups.get(group)
            if dq is not None:
                if dq and dq[0] is msg:
                    dq.popleft()
                else:
                    dq.remove(msg)
                if was == INFLIGHT:
                    self.group_inflight[group] -= 1
                if dq:
                    self.push_group(group)
                else:
                    del self.groups[group]
                    del self.group_inflight[group]
        self.version += 1

    def make_ready(self, queue: Any, msg: Any) -> None:
        was = msg._fp_state
        if was in (READY, GONE):
            return
        self._set_state(msg, READY)
        if queue.fifo_queue:
            group = msg.group_id or ""
            if was == INFLIGHT:
                self.group_inflight[group] -= 1
            self.push_group(group)
        else:
            heapq.heappush(self.ready_heap, (msg._fp_seq, msg._fp_epoch, msg))
        self.version += 1

    def make_inflight(self, queue: Any, msg: Any, until: float) -> None:
        was = msg._fp_state
        if was == GONE:
            return
        if was != INFLIGHT and queue.fifo_queue:
            self.group_inflight[msg.group_id or ""] += 1
        self._set_state(msg, INFLIGHT)
        heapq.heappush(self.timers, (until, msg._fp_seq, msg._fp_epoch, msg))

    def push_group(self, group: str) -> None:
        dq = self.groups.get(group)
        if dq and self.group_inflight.get(group, 0) == 0 and dq[0]._fp_state == READY:
            heapq.heappush(self.group_heap, (dq[0]._fp_seq, group))

    def tick(self, queue: Any, now: float) -> None:
        """Apply every visibility and delay expiry due by ``now``."""
        timers = self.timers
        while timers and timers[0][0] <= now:
            _, _, epoch, msg = heapq.heappop(timers)
            if msg._fp_epoch == epoch and msg._fp_state in (INFLIGHT, DELAYED):
                self.make_ready(queue, msg)

    def next_timer(self) -> float | None:
        return self.timers[0][0] if self.timers else None

    # -- deduplication ----------------------------------------------------------------------------------
    def dedup_lookup(self, key: str, now: float) -> tuple[float, str, str | None] | None:
        order = self.dedup_order
        while order and now - order[0][0] >= DEDUPLICATION_INTERVAL_MS:
            at, old = order.popleft()
            entry = self.dedup.get(old)
            if entry is not None and entry[0] == at:
                del self.dedup[old]
        return self.dedup.get(key)

    def dedup_record(self, key: str, at: float, message_id: str, sequence_number: str | None) -> None:
        self.dedup[key] = (at, message_id, sequence_number)
        self.dedup_order.append((at, key))

    def reset(self, queue: Any, messages: Iterable[Any]) -> None:
        """Replace every message (moto's purge assigns ``queue._messages = []``); dedup history stays."""
        for msg in list(self.msgs.values()):
            self._set_state(msg, GONE)
        self.msgs.clear()
        self.by_receipt.clear()
        self.ready_heap.clear()
        self.groups.clear()
        self.group_inflight.clear()
        self.group_heap.clear()
        self.timers.clear()
        self.counts = [0, 0, 0, 0]
        now = _now_ms()
        for msg in messages:
            self.insert(queue, msg, now)
            for handle in msg.all_receipt_handles:
                if handle is not None:
                    self.by_receipt[handle] = msg
        self.cond.notify_all()


_state_init_lock = threading.Lock()


def state(queue: Any) -> QueueState:
    """The queue's :class:`QueueState`, created on first use (from moto's own list for a pre-patch queue)."""
    st: QueueState | None = queue.__dict__.get("_fp")
    if st is not None:
        return st
    with _state_init_lock:
        st = queue.__dict__.get("_fp")
        if st is None:
            st = QueueState()
            queue.__dict__["_fp"] = st
            legacy = queue.__dict__.pop("_messages", None)
            if legacy:
                with st.cond:
                    st.reset(queue, legacy)
    return st


def _snapshot(msg: Any) -> Any:
    """A copy of ``msg`` for the response, built without moto's instance tracker (see the module doc)."""
    copy = object.__new__(type(msg))
    copy.__dict__.update(msg.__dict__)
    copy.message_attributes = dict(msg.message_attributes)
    copy._old_receipt_handles = list(msg._old_receipt_handles)
    copy.system_attributes = dict(msg.system_attributes)
    return copy


class _NullTracker(list[Any]):
    """Stands in for moto's ``Message.instances_tracked``, which would keep every message ever sent."""

    def append(self, _item: Any) -> None:
        return None


# ----------------------------------------------------------------------------------------------------------
# Replacements for moto.sqs.models.Queue
# ----------------------------------------------------------------------------------------------------------
def _q_messages_get(self: Any) -> list[Any]:
    st = state(self)
    with st.cond:
        return list(st.msgs.values())


def _q_messages_set(self: Any, value: Iterable[Any]) -> None:
    st = state(self)
    with st.cond:
        st.reset(self, value)


def _q_visible_messages(self: Any) -> list[Any]:
    """moto's ``Queue.messages``: visible, not delayed, in arrival order (O(n); not on a hot path)."""
    st = state(self)
    with st.cond:
        st.tick(self, _now_ms())
        return [m for m in st.msgs.values() if m._fp_state == READY]


def _q_pending_messages(self: Any) -> set[Any]:
    st = state(self)
    with st.cond:
        st.tick(self, _now_ms())
        return {m for m in st.msgs.values() if m._fp_state == INFLIGHT}


def _q_pending_groups(self: Any) -> set[str]:
    st = state(self)
    with st.cond:
        st.tick(self, _now_ms())
        return {g for g, n in st.group_inflight.items() if n > 0}


def _count(which: int) -> Callable[[Any], int]:
    def getter(self: Any) -> int:
        st = state(self)
        with st.cond:
            st.tick(self, _now_ms())
            return st.counts[which]

    return getter


def _q_add_message(self: Any, message: Any) -> None:
    """Store ``message`` unless it duplicates one sent within 5 minutes (FIFO); then wake long polls.

    A duplicate takes the first message's id and sequence number, so SendMessage answers as SQS does.
    """
    st = state(self)
    redriven = getattr(message, "_fp_redrive", False)
    with st.cond:
        now = _now_ms()
        if self.fifo_queue and not redriven:
            if message.deduplication_id:
                key = message.deduplication_id
                if getattr(self, "deduplication_scope", "queue") == "messageGroup":
                    key = f"{message.group_id}\x00{key}"
                hit = st.dedup_lookup(key, now)
                if hit is not None:
                    message.id = hit[1]
                    message.sequence_number = hit[2]
                    message._fp_duplicate = True
                    return
                message.sequence_number = f"{_SEQUENCE_BASE + st.next_sequence_number:020d}"
                st.next_sequence_number += 1
                st.dedup_record(key, float(message.sent_timestamp or now), message.id, message.sequence_number)
            else:
                message.sequence_number = f"{_SEQUENCE_BASE + st.next_sequence_number:020d}"
                st.next_sequence_number += 1
        if redriven:
            message._fp_redrive = False
        st.insert(self, message, now)
        st.cond.notify_all()
    if self.lambda_event_source_mappings:
        _lambda_poll(self)


def _lambda_poll(queue: Any) -> None:
    # moto's add_message hands new messages to Lambda event-source mappings; kept for completeness.
    from moto.sqs.models import sqs_backends

    for arn, esm in queue.lambda_event_source_mappings.items():
        if not esm.enabled:
            continue
        backend = sqs_backends[queue.account_id][queue.region]
        messages = backend.receive_message(
            queue.name, esm.batch_size, queue.receive_message_wait_time_seconds, queue.visibility_timeout
        )
        from moto.awslambda.utils import get_backend

        result = get_backend(queue.account_id, queue.region).send_sqs_batch(arn, messages, queue.queue_arn)
        for m in messages:
            if result:
                backend.delete_message(queue.name, str(m.receipt_handle))
            else:
                backend.change_message_visibility(queue.name, str(m.receipt_handle), visibility_timeout=0)


def _q_delete_message(self: Any, receipt_handle: str) -> None:
    """Delete the message that has (or ever had) ``receipt_handle``; deleting twice is not an error.

    Raises:
        ReceiptHandleIsInvalid: no stored message ever had this handle.
    """
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    st = state(self)
    with st.cond:
        if receipt_handle in st.deleted:
            return  # already deleted: SQS answers success again
        msg = st.by_receipt.get(receipt_handle)
        if msg is None:
            raise ReceiptHandleIsInvalid()
        for handle in msg.all_receipt_handles:
            if handle is not None:
                st.deleted[handle] = None
        while len(st.deleted) > DELETED_HANDLES_KEPT:
            del st.deleted[next(iter(st.deleted))]
        st.remove(self, msg)
        st.cond.notify_all()


def _q_wait_for_messages(self: Any, timeout: int) -> None:
    st = state(self)
    with st.cond:
        st.cond.wait(timeout=timeout)


# ----------------------------------------------------------------------------------------------------------
# Replacements for moto.sqs.models.SQSBackend
# ----------------------------------------------------------------------------------------------------------
def _b_validate_message(
    self: Any,
    queue: Any,
    message_body: str,
    delay_seconds: int,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    validate_group_id: bool = True,
) -> None:
    """moto's checks, reading ContentBasedDeduplication directly instead of building every attribute."""
    from moto.sqs.exceptions import InvalidParameterValue, MissingParameter

    if queue.fifo_queue:
        content_based = bool(queue.content_based_deduplication)
        if not content_based and not group_id:
            raise MissingParameter("MessageGroupId")
        if not content_based and group_id and not deduplication_id:
            raise InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly"
            )
        if delay_seconds > 0:
            raise InvalidParameterValue(
                f"Value {delay_seconds} for parameter DelaySeconds is invalid. Reason: "
                "The request include parameter that is not valid for this queue type."
            )
    if len(message_body) > queue.maximum_message_size:
        raise InvalidParameterValue(
            "One or more parameters are invalid. Reason: Message must be shorter than "
            f"{queue.maximum_message_size} bytes."
        )
    if group_id is None and queue.fifo_queue:
        raise MissingParameter("MessageGroupId")


def _b_send_message(
    self: Any,
    queue_name: str,
    message_body: str,
    message_attributes: dict[str, Any] | None = None,
    delay_seconds: int | None = None,
    deduplication_id: str | None = None,
    group_id: str | None = None,
    system_attributes: dict[str, Any] | None = None,
    validate_group_id: bool = True,
) -> Any:
    """moto's ``send_message`` without the per-send attribute dicts; sequence numbers come from the queue."""
    from moto.moto_api._internal import mock_random as random
    from moto.sqs.exceptions import InvalidParameterValue
    from moto.sqs.models import MAXIMUM_MESSAGE_DELAY, Message

    queue = self.get_queue(queue_name)
    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )
    delay = int(delay_seconds) if delay_seconds is not None else int(queue.delay_seconds)
    if delay > MAXIMUM_MESSAGE_DELAY:
        raise InvalidParameterValue(
            f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
        )
    message = Message(str(random.uuid4()), message_body, system_attributes)
    if queue.fifo_queue and queue.content_based_deduplication:
        message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    message.mark_sent(delay_seconds=delay)
    queue.add_message(message)
    return message


def _b_receive_message(
    self: Any,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> list[Any]:
    """Receive up to ``count`` messages, long-polling up to ``wait_seconds_timeout`` seconds for the first.

    Returns snapshots (with a fresh receipt handle) of the delivered messages.  Messages already received
    ``maxReceiveCount`` times are moved to the dead-letter queue instead of being delivered.
    """
    from moto.sqs.models import _filter_message_attributes

    queue = self.get_queue(queue_name)
    st = state(queue)
    names = message_attribute_names or []
    vt_ms = int(visibility_timeout or 0) * 1000
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        to_dlq: list[Any] = []
        with st.cond:
            now = _now_ms()
            st.tick(queue, now)
            picked = _take(queue, st, count, vt_ms, now, to_dlq)
            seen_version = st.version
        dlq = queue.dead_letter_queue
        for msg in to_dlq:
            # Outside our lock (lock order), and past the DLQ's dedup check: SQS redrive never deduplicates.
            msg._fp_redrive = True
            dlq.add_message(msg)
        if picked:
            result = []
            for msg in picked:
                _filter_message_attributes(msg, names)
                result.append(msg)
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return []
        with st.cond:
            if st.version != seen_version:
                continue  # something changed since we looked
            timeout = min(remaining, 1.0)
            nxt = st.next_timer()
            if nxt is not None:
                timeout = max(0.0, min(timeout, (nxt - _now_ms()) / 1000.0 + 0.001))
            st.cond.wait(timeout=timeout)


def _take(queue: Any, st: QueueState, count: int, vt_ms: int, now: float, to_dlq: list[Any]) -> list[Any]:
    """Pick and mark received up to ``count`` messages (caller holds the lock); returns snapshots."""
    policy = queue.redrive_policy if queue.dead_letter_queue is not None else None
    max_receives = int(policy["maxReceiveCount"]) if policy else None
    retention_ms = int(queue.message_retention_period) * 1000
    out: list[Any] = []

    def deliverable(msg: Any) -> bool:
        if max_receives is not None and msg.approximate_receive_count >= max_receives:
            st.remove(queue, msg)
            to_dlq.append(msg)
            return False
        if msg.sent_timestamp + retention_ms <= now:
            st.remove(queue, msg)  # past MessageRetentionPeriod: SQS deletes it
            return False
        return True

    def deliver(msg: Any) -> None:
        msg.mark_received(visibility_timeout=vt_ms // 1000)
        msg._fp_received_ms = now
        st.by_receipt[msg.receipt_handle] = msg
        if vt_ms > 0:
            st.make_inflight(queue, msg, msg.visible_at)
        out.append(_snapshot(msg))

    if queue.fifo_queue:
        touched: list[str] = []
        seen: set[str] = set()
        while len(out) < count and st.group_heap:
            head_seq, group = heapq.heappop(st.group_heap)
            if group in seen:
                continue
            dq = st.groups.get(group)
            if not dq or dq[0]._fp_seq != head_seq or st.group_inflight[group] or dq[0]._fp_state != READY:
                continue  # stale entry; a fresh one exists if the group is deliverable
            seen.add(group)
            touched.append(group)
            i = 0
            while len(out) < count and i < len(dq):
                msg = dq[i]
                if msg._fp_state != READY:
                    break  # a delayed message holds back the rest of its group
                if not deliverable(msg):
                    continue  # removed from dq; the next message moved into position i
                deliver(msg)
                i += 1
        for group in touched:
            st.push_group(group)  # still deliverable (visibility 0, or everything went to the DLQ)
    else:
        again: list[Any] = []
        while len(out) < count and st.ready_heap:
            _seq, epoch, msg = heapq.heappop(st.ready_heap)
            if msg._fp_epoch != epoch or msg._fp_state != READY:
                continue
            if not deliverable(msg):
                continue
            deliver(msg)
            if vt_ms == 0:
                again.append(msg)
        for msg in again:
            heapq.heappush(st.ready_heap, (msg._fp_seq, msg._fp_epoch, msg))
    if to_dlq:
        st.cond.notify_all()
    return out


def _b_change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
    """Make the message with ``receipt_handle`` visible again after ``visibility_timeout`` seconds.

    Raises:
        ReceiptHandleIsInvalid: no stored message has this handle.
        InvalidParameterValue: the new timeout would end more than 12 hours after the message's latest receive.
    """
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

    queue = self.get_queue(queue_name)
    st = state(queue)
    with st.cond:
        msg = st.by_receipt.get(receipt_handle)
        if msg is None:
            raise ReceiptHandleIsInvalid
        now = _now_ms()
        st.tick(queue, now)
        until = now + int(visibility_timeout) * 1000
        since = getattr(msg, "_fp_received_ms", None) or msg.sent_timestamp
        if until - since > MAX_VISIBILITY_MS:
            raise InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
            )
        msg.change_visibility(visibility_timeout)
        if int(visibility_timeout) <= 0:
            st.make_ready(queue, msg)
            st.cond.notify_all()
        else:
            # In flight again (a heartbeat), or in flight once more after its timeout lapsed unreceived.
            st.make_inflight(queue, msg, msg.visible_at)


def _b_purge_queue(self: Any, queue_name: str) -> None:
    """Delete every message (moto's purge-rate check kept); the 5-minute dedup history is kept."""
    from moto.sqs.models import SQSBackend

    original = _originals[(SQSBackend, "purge_queue")]
    queue = self.get_queue(queue_name)
    with state(queue).cond:
        original(self, queue_name)


# ----------------------------------------------------------------------------------------------------------
# apply / revert
# ----------------------------------------------------------------------------------------------------------
def _replacements() -> list[tuple[type, str, Any]]:
    from moto.sqs.models import Queue, SQSBackend

    return [
        (Queue, "_messages", property(_q_messages_get, _q_messages_set)),
        (Queue, "messages", property(_q_visible_messages)),
        (Queue, "pending_messages", property(_q_pending_messages)),
        (Queue, "pending_message_groups", property(_q_pending_groups)),
        (Queue, "approximate_number_of_messages", property(_count(READY))),
        (Queue, "approximate_number_of_messages_not_visible", property(_count(INFLIGHT))),
        (Queue, "approximate_number_of_messages_delayed", property(_count(DELAYED))),
        (Queue, "add_message", _q_add_message),
        (Queue, "delete_message", _q_delete_message),
        (Queue, "wait_for_messages", _q_wait_for_messages),
        (SQSBackend, "_validate_message", _b_validate_message),
        (SQSBackend, "send_message", _b_send_message),
        (SQSBackend, "receive_message", _b_receive_message),
        (SQSBackend, "change_message_visibility", _b_change_message_visibility),
        (SQSBackend, "purge_queue", _b_purge_queue),
    ]


def apply(strict: bool = True) -> bool:
    """Patch moto's SQS backend in this process (idempotent).  Apply before the first queue is created.

    Returns:
        True when the patch is in place; False when ``strict`` is false and the moto version is unsupported
        (moto then runs unpatched, and a warning says so).

    Raises:
        UnsupportedMotoVersion: the installed moto is outside ``>=5.0.20,<5.3`` and ``strict`` is true, or
            moto's SQS classes lack a method this patch replaces.
    """
    import moto
    from moto.sqs import models

    with _lock:
        if _originals:
            return True
        version = getattr(moto, "__version__", "0")
        problem = None
        if not version_supported(version):
            problem = f"moto {version} is not the version the SQS fast path was written for (>=5.0.20,<5.3)"
        else:
            for cls, name, _ in _replacements():
                if name != "_messages" and not hasattr(cls, name):
                    problem = f"moto {version}: {cls.__name__}.{name} is missing; the SQS fast path does not fit"
                    break
        if problem:
            if strict:
                raise UnsupportedMotoVersion(problem + "; pin moto>=5.0.20,<5.3 or run without the fast path")
            message = problem + ": the local SQS endpoint runs UNPATCHED and slows sharply past ~1,000 messages"
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            logger.error(message)
            return False
        for cls, name, replacement in _replacements():
            _originals[(cls, name)] = cls.__dict__.get(name)
            setattr(cls, name, replacement)
        _originals[(models.Message, "instances_tracked")] = models.Message.__dict__.get("instances_tracked")
        models.Message.instances_tracked = _NullTracker()  # type: ignore[attr-defined]
        return True


def revert() -> None:
    """Undo :func:`apply` (for tests and the benchmark).  Queues created while patched must not be reused."""
    with _lock:
        for (cls, name), original in _originals.items():
            if original is None:
                if name in cls.__dict__:
                    delattr(cls, name)
            else:
                setattr(cls, name, original)
        _originals.clear()
