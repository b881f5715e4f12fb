"""The SQS consumer: batched receive, FIFO group hold-back, visibility heartbeat, retry by visibility.

Built by :meth:`engine.broker.broker.SQSBroker.consume`, which hands it everything it uses (the resolved queue,
the client, the delete buffer, :class:`~engine.broker.dead_letters.DeadLetters`): the consumer never imports the
broker.

Threads per consumer: Dramatiq's consumer thread calls ``__next__``; a *receiver* thread long-polls SQS into a local
buffer, asking for ``min(10, free slots)`` as soon as a slot of the worker's :class:`~engine.broker.capacity.Capacity`
frees; a *heartbeat* thread extends the visibility of every message still held here.  ``ack``/``nack`` are called
from Dramatiq's worker threads, so all state sits behind one condition variable.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import dramatiq
from dramatiq.errors import ActorNotFound, Retry

from engine.broker.backoff import backoff_seconds, visibility_timeout_for
from engine.broker.batching import BATCH_SIZE, DeleteBuffer, change_visibility
from engine.broker.capacity import Capacity
from engine.broker.config import BrokerConfig
from engine.broker.dead_letters import DeadLetters
from engine.broker.envelope import PAN_DETECTED, Envelope, parse_body, redacted_body, to_message
from engine.broker.errors import HeldBehindFailure, PoisonMessage
from engine.broker.queues import ConsumedQueue
from engine.domain.pan import contains_pan

log = logging.getLogger(__name__)

RECEIVE_ATTRIBUTES = ["ApproximateReceiveCount", "MessageGroupId", "SentTimestamp"]
#: Pause after a failed ReceiveMessage (SQS unreachable, throttled), doubled up to the maximum.
RECEIVE_ERROR_PAUSE = 0.5
#: How long closing a consumer waits for a long poll in flight before leaving it (see :meth:`SQSConsumer.close`).
SHUTDOWN_RECEIVE_WAIT_SECONDS = 1.0
RECEIVE_ERROR_PAUSE_MAX = 10.0
#: How often a consumer whose gate is shut looks at it again (seconds).
GATE_PAUSE = 0.5
#: A FIFO consumer pausing after an unfilled receive asks again early once this many of its messages finished:
#: each finished message's group may have a next message, deliverable once the delete is sent (a fuller batch).
FINISHED_PER_RECEIVE = BATCH_SIZE // 2

#: A consumer's gate: how much work it may take now — ``all``, ``probe`` (one message, when it holds none) or
#: ``none`` (take nothing and give back what is not started).  The worker gates the queues whose jobs call Stripe
#: with the Stripe circuit breaker (:meth:`engine.adapters.circuit_breaker.CircuitBreaker.admits`).
Gate = Callable[[], str]


class SQSMessage(dramatiq.MessageProxy):
    """A received message: the Dramatiq message plus what SQS said about it."""

    def __init__(
        self,
        message: dramatiq.Message[Any],
        *,
        envelope: Envelope,
        body: str,
        sqs_message_id: str,
        receipt_handle: str,
        receive_count: int,
        group_id: str | None,
        visible_until: float,
    ) -> None:
        super().__init__(message)
        self.envelope = envelope
        self.body = body
        self.sqs_message_id = sqs_message_id
        self.receipt_handle = receipt_handle
        self.receive_count = receive_count
        self.group_id = group_id
        #: monotonic time at which SQS makes the message visible again unless extended.
        self.visible_until = visible_until
        self.yielded = False
        self.dead_letter_now = False

    def __str__(self) -> str:
        # Dramatiq logs the message on every failed attempt ("Failed to process message %s …"): the default
        # prints the actor's arguments, i.e. the whole envelope (e-mail, metadata).  Identifiers only.
        return (
            f"{self.actor_name} message {self.message_id} (sqs {self.sqs_message_id}, job {self.envelope.job_id}, "
            f"receive {self.receive_count})"
        )

    def __repr__(self) -> str:
        return f"<SQSMessage {self}>"

    @property
    def exception(self) -> BaseException | None:
        """The exception the actor raised (set by Dramatiq's worker before ``nack``)."""
        return self._exception


class SQSConsumer(dramatiq.Consumer):
    """Consumes one queue for one Dramatiq worker.  Built by :meth:`SQSBroker.consume`.

    ``capacity`` bounds the messages held at once (received, not yet acked) by every consumer that shares it (the
    broker shares one per worker process: its threads plus a margin); without one, ``prefetch`` bounds this
    consumer alone.  The receiver asks SQS for ``min(10, free slots)`` as soon as one slot is free (one slot while
    the queue is idle, so an idle queue's long poll does not keep capacity from the busy ones).  After a receive
    that SQS could not fill, it waits ``config.receive_pause_seconds`` so the next one finds a fuller batch (fewer
    calls per message at the price of that much latency; ``config.standard_batch_seconds`` on a standard queue,
    which also delays its deletes that long).  ``get_actor`` is the broker's (a message for an unknown
    actor is poison); ``dead_letter_exceptions`` are the exceptions that send a message to the DLQ at once.
    ``gate`` (optional, see :data:`Gate`) pauses receiving while a dependency the queue's jobs need is down, and
    gives back unstarted messages (visibility 0) meanwhile.
    """

    def __init__(
        self,
        queue: ConsumedQueue,
        prefetch: int,
        timeout_ms: int,
        *,
        sqs: Any,
        config: BrokerConfig,
        deleter: DeleteBuffer,
        dead_letters: DeadLetters,
        get_actor: Callable[[str], object],
        dead_letter_exceptions: tuple[type[BaseException], ...],
        gate: Gate | None = None,
        capacity: Capacity | None = None,
    ) -> None:
        self._queue = queue
        self._gate = gate
        self._sqs = sqs
        self._config = config
        self._deleter = deleter
        self._dead_letters = dead_letters
        self._get_actor = get_actor
        self._dead_letter_exceptions = dead_letter_exceptions
        self.queue_name = queue.name
        self._fifo = queue.fifo
        self._url = queue.url
        self._visibility = queue.visibility_timeout
        self._timeout = max(timeout_ms, 1) / 1000
        self._capacity = capacity if capacity is not None else Capacity(max(prefetch, 1))
        # A standard queue (notifications) has no group waiting on a delete and no one waiting on its latency: it
        # batches its receives and deletes over a longer window.
        self._pause = config.receive_pause_seconds if self._fifo else config.standard_batch_seconds
        self._delete_window = None if self._fifo else config.standard_batch_seconds
        #: True while the receiver waits in a ReceiveMessage (FIFO: an ack's delete then goes out within the
        #: buffer's short window, since a group waits on it; otherwise the receiver sends it before its next receive).
        self._polling = False
        self._wait = config.wait_time_seconds
        self._tick = max(0.2, min(config.heartbeat_seconds, self._visibility / 3))
        self._margin = min(2 * self._tick, self._visibility * 0.8)

        self._cond = threading.Condition()
        self._ready: deque[SQSMessage] = deque()
        self._tracked: dict[str, SQSMessage] = {}
        self._running_groups: set[str] = set()
        self._finished_since_receive = 0
        self._held: dict[str, deque[SQSMessage]] = {}
        self._closing = threading.Event()
        self._receiving_stopped = threading.Event()
        self._stop_requested_at: float | None = None
        self._receiver = threading.Thread(target=self._receive_loop, name=f"sqs-recv-{queue.name}", daemon=True)
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name=f"sqs-hb-{queue.name}", daemon=True)
        self._receiver.start()
        self._heartbeat.start()

    # -- Dramatiq's side -------------------------------------------------------------------------------------

    def __next__(self) -> SQSMessage | None:
        """The next message ready to run, or ``None`` after the worker timeout (so Dramatiq can check for stop)."""
        with self._cond:
            if not self._ready:
                self._cond.wait(timeout=self._timeout)
            if not self._ready:
                return None
            message = self._ready.popleft()
            message.yielded = True
            return message

    def ack(self, message: dramatiq.MessageProxy) -> None:
        """Schedule the deletion (batched) and release the next held message of the same group."""
        assert isinstance(message, SQSMessage)
        with self._cond:
            self._finish(message)
            window = self._delete_window
            if self._fifo and not self._polling:
                # The receiver is pausing or about to receive: it sends pending deletes first (bounded by the pause
                # should it have just started a poll), so this delete joins the others instead of leaving alone.
                window = self._pause
        self._deleter.add(self._url, message.receipt_handle, window)

    def nack(self, message: dramatiq.MessageProxy) -> None:
        """Retry by visibility, or dead-letter.  Never re-sends the message.

        - the actor asked for a dead letter (``throws``, or one of the broker's ``dead_letter_exceptions``,
          :class:`~engine.broker.errors.DeadLetterRequested` by default): to the DLQ now;
        - the receive count reached maxReceiveCount: record the reason, visibility 0 → SQS redrives it on its
          next receive;
        - else: invisible for ``uniform(0, min(max, base * 2**(receive_count-1)))`` seconds (a
          :class:`dramatiq.Retry` with a delay sets the delay itself).
        Held messages of the same group are returned at once (visibility 0): SQS keeps serving that group only
        after the failed message, so order holds.
        """
        assert isinstance(message, SQSMessage)
        with self._cond:
            self._forget(message)
            self._finished_since_receive += 1
            released = list(self._held.pop(message.group_id, ())) if message.group_id else []
            for held in released:
                self._forget(held)
            if message.group_id:
                self._running_groups.discard(message.group_id)
            self._cond.notify_all()
        exc = message.exception
        cfg = self._config
        try:
            if message.dead_letter_now or isinstance(exc, self._dead_letter_exceptions):
                self._dead_letters.move(
                    self._queue,
                    body=message.body,
                    sqs_message_id=message.sqs_message_id,
                    receipt_handle=message.receipt_handle,
                    group_id=message.group_id,
                    receive_count=message.receive_count,
                    envelope=message.envelope,
                    error=exc,
                    source="explicit",
                )
            elif message.receive_count >= cfg.max_receive_count:
                self._dead_letters.record(
                    self._queue,
                    body=message.body,
                    sqs_message_id=message.sqs_message_id,
                    group_id=message.group_id,
                    receive_count=message.receive_count,
                    envelope=message.envelope,
                    error=exc,
                    source="redrive",
                )
                self._set_visibility([(message.receipt_handle, 0)])
            else:
                if isinstance(exc, Retry) and exc.delay is not None:
                    delay = exc.delay / 1000
                else:
                    delay = backoff_seconds(
                        message.receive_count, base=cfg.backoff_base_seconds, maximum=cfg.backoff_max_seconds
                    )
                self._set_visibility([(message.receipt_handle, visibility_timeout_for(delay))])
        finally:
            if released:
                self._release_held(released, message)

    def _release_held(self, released: list[SQSMessage], failed: SQSMessage) -> None:
        """Return messages held behind ``failed`` (same group) with visibility 0.

        SQS counts their receive although they never ran: that is inherent to FIFO batches.  A message whose
        receive count is already exhausted will be redriven by SQS on its next receive without running, so its
        reason is recorded now (operators replay it from the DLQ).
        """
        for held in released:
            if held.receive_count >= self._config.max_receive_count:
                self._dead_letters.record(
                    self._queue,
                    body=held.body,
                    sqs_message_id=held.sqs_message_id,
                    group_id=held.group_id,
                    receive_count=held.receive_count,
                    envelope=held.envelope,
                    error=HeldBehindFailure(
                        f"never ran: returned after message {failed.sqs_message_id} of its group failed, "
                        "with its receive count exhausted"
                    ),
                    source="redrive",
                )
        self._set_visibility([(m.receipt_handle, 0) for m in released])

    def requeue(self, messages: Iterable[dramatiq.MessageProxy]) -> None:
        """Return unstarted messages to the queue at once (visibility 0), with any held behind them."""
        returned: list[SQSMessage] = []
        with self._cond:
            for message in messages:
                if not isinstance(message, SQSMessage) or message.sqs_message_id not in self._tracked:
                    continue
                returned.extend(self._untrack_with_group(message))
            self._cond.notify_all()
        if returned:
            self._set_visibility([(m.receipt_handle, 0) for m in returned])

    def close(self) -> None:
        """Stop receiving, return every message not handed to Dramatiq yet (visibility 0), flush deletes.

        Messages still being processed (a worker that did not stop in time) are left alone: SQS redelivers them
        when their visibility runs out.
        """
        self.stop_receiving()
        self._closing.set()
        assert self._stop_requested_at is not None
        # A long poll cannot be interrupted, and waiting up to 20 s for it made every shutdown slow.  Wait briefly:
        # a poll that answers later still gives its messages back (the receive loop sees the stop) while this
        # process lives; after it exits they are redelivered when their visibility timeout ends (a delay, no loss).
        # The wait counts from the shutdown's start (every consumer's receiving stops then), so closing the
        # consumers one after another does not add up their waits.
        waited = time.monotonic() - self._stop_requested_at
        self._receiver.join(timeout=max(0.0, SHUTDOWN_RECEIVE_WAIT_SECONDS - waited))
        self._heartbeat.join(timeout=5)
        with self._cond:
            unstarted = [m for m in self._tracked.values() if not m.yielded]
            for m in unstarted:
                self._forget(m)
            self._ready.clear()
            self._held.clear()
        if unstarted:
            self._set_visibility([(m.receipt_handle, 0) for m in unstarted])
        self._deleter.flush(self._url)

    def stop_receiving(self) -> None:
        """Make no further ReceiveMessage calls (shutdown has begun); running messages keep their heartbeat.

        Called for every consumer when the worker starts shutting down, so the receivers' last long polls end
        concurrently while running jobs finish, instead of one after another in :meth:`close`.
        """
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._receiving_stopped.set()
        with self._cond:
            self._cond.notify_all()

    # -- internals ---------------------------------------------------------------------------------------------

    def held_count(self) -> int:
        """Messages received and not yet acked, nacked or returned (for tests and metrics)."""
        with self._cond:
            return len(self._tracked)

    def _forget(self, message: SQSMessage) -> None:
        """Stop tracking ``message`` and free its slot (caller holds the lock; a message not tracked is a no-op)."""
        if self._tracked.pop(message.sqs_message_id, None) is not None:
            self._capacity.release(1)

    def _finish(self, message: SQSMessage) -> None:
        """Forget a finished message and move the next held message of its group to the ready list."""
        self._forget(message)
        self._finished_since_receive += 1
        group = message.group_id
        if group:
            queue = self._held.get(group)
            if queue:
                self._ready.append(queue.popleft())
                if not queue:
                    del self._held[group]
            else:
                self._running_groups.discard(group)
        self._cond.notify_all()

    def _untrack_with_group(self, message: SQSMessage) -> list[SQSMessage]:
        """Forget ``message`` and the messages held behind it (caller holds the lock)."""
        out = [message]
        self._forget(message)
        if message in self._ready:
            self._ready.remove(message)
        if message.group_id:
            for held in self._held.pop(message.group_id, ()):
                self._forget(held)
                out.append(held)
            self._running_groups.discard(message.group_id)
        return out

    def _gate_mode(self) -> str:
        return self._gate() if self._gate is not None else "all"

    def _give_back_unstarted(self) -> None:
        """Return every message not yet handed to Dramatiq (and those held behind it) with visibility 0: the
        gate shut, so another worker whose dependency answers may take them.  No attempt of a job is spent."""
        with self._cond:
            returned: list[SQSMessage] = []
            for message in list(self._ready):
                returned.extend(self._untrack_with_group(message))
            self._cond.notify_all()
        if returned:
            log.info("gate shut on %s: gave back %d unstarted message(s)", self._url, len(returned))
            self._set_visibility([(m.receipt_handle, 0) for m in returned])

    def _set_visibility(self, items: list[tuple[str, int]]) -> None:
        try:
            failed = change_visibility(self._sqs, self._url, items)
        except Exception:
            log.exception("ChangeMessageVisibility failed on %s; SQS will apply the queue's timeout", self._url)
            return
        for entry in failed.values():
            log.warning("ChangeMessageVisibility entry failed on %s: %s %s", self._url, entry.code, entry.message)

    def _receive_loop(self) -> None:
        pause = RECEIVE_ERROR_PAUSE
        idle = True  # until a receive brings something: the first long poll reserves one slot
        while not self._receiving_stopped.is_set():
            mode = self._gate_mode()
            if mode != "all":
                if mode == "none":
                    self._give_back_unstarted()
                if mode == "none" or self.held_count():
                    self._receiving_stopped.wait(GATE_PAUSE)
                    continue
                most = 1  # half-open: one message for the probe
            else:
                most = 1 if idle else BATCH_SIZE
            # Refill as soon as a slot frees (a thread finished), with as many as are free: threads never wait
            # for ten to finish, and no more is held than the worker can start soon.
            want = self._capacity.reserve(most, timeout=1.0)
            if not want:
                continue
            if self._receiving_stopped.is_set():
                self._capacity.release(want)
                return
            with self._cond:
                self._finished_since_receive = 0
                self._polling = True  # before the flush: an ack from now on is sent within the short window
            if self._fifo:
                # SQS hands out a FIFO group's next message only once the previous one is deleted: send the acks
                # waiting in the delete buffer first, so batching deletes never delays a group.
                self._deleter.flush(self._url)
            try:
                answer = self._sqs.receive_message(
                    QueueUrl=self._url,
                    MaxNumberOfMessages=want,
                    WaitTimeSeconds=self._wait,
                    MessageSystemAttributeNames=RECEIVE_ATTRIBUTES,
                )
            except Exception:
                with self._cond:
                    self._polling = False
                self._capacity.release(want)
                log.exception("ReceiveMessage failed on %s; pausing %.1fs", self._url, pause)
                self._receiving_stopped.wait(pause)
                pause = min(pause * 2, RECEIVE_ERROR_PAUSE_MAX)
                continue
            with self._cond:
                self._polling = False
            pause = RECEIVE_ERROR_PAUSE
            raw_messages = answer.get("Messages", [])
            idle = not raw_messages
            if not raw_messages:
                self._capacity.release(want)
                continue
            received_at = time.monotonic()
            if self._receiving_stopped.is_set():
                # Stopped while polling: give them back untouched.
                self._capacity.release(want)
                self._set_visibility([(raw["ReceiptHandle"], 0) for raw in raw_messages])
                return
            admitted = self._admit(raw_messages, received_at)
            self._capacity.release(want - admitted)
            if len(raw_messages) < BATCH_SIZE and self._pause > 0:
                # SQS had no more, or only a few slots were free (the threads are busy: messages wait for them).
                self._pause_for_a_fuller_batch()

    def _pause_for_a_fuller_batch(self) -> None:
        """SQS had no more for now: let some arrive before asking again (a fuller batch, fewer calls per message).
        Waits the pause, on a FIFO queue only until :data:`FINISHED_PER_RECEIVE` messages finished since the last
        receive (their groups' next messages become deliverable), and never past a stop."""
        deadline = time.monotonic() + self._pause
        with self._cond:
            while not self._receiving_stopped.is_set():
                left = deadline - time.monotonic()
                if left <= 0 or (self._fifo and self._finished_since_receive >= FINISHED_PER_RECEIVE):
                    return
                self._cond.wait(left)

    def _admit(self, raw_messages: list[dict[str, Any]], received_at: float) -> int:
        """Decode a received batch; dead-letter the poison; queue the rest, holding back later messages of a
        group whose earlier message has not finished.  Returns how many were queued (each holds a slot)."""
        admitted: list[SQSMessage] = []
        for raw in raw_messages:
            attributes = raw.get("Attributes", {})
            body = raw.get("Body", "")
            group_id = attributes.get("MessageGroupId") if self._fifo else None
            receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
            envelope: Envelope | None = None
            try:
                if group_id and contains_pan(group_id):
                    raise PoisonMessage(PAN_DETECTED, "the MessageGroupId looks like a card number")
                # Scans the body for card numbers before anything is stored or sent (issue 14 item 3).
                envelope = parse_body(body)
                try:
                    self._get_actor(envelope.actor_name)
                except ActorNotFound:
                    raise PoisonMessage("unknown_actor", f"no actor named {envelope.actor_name!r}") from None
            except PoisonMessage as poison:
                log.error("poison message %s on %s: %s", raw.get("MessageId"), self._url, poison)
                if poison.reason == PAN_DETECTED:
                    # Neither the DLQ message nor the dead-letter row may hold the number: keep identifiers only.
                    body = redacted_body(body)
                    if group_id and contains_pan(group_id):
                        group_id = hashlib.sha256(group_id.encode()).hexdigest()
                self._dead_letters.move(
                    self._queue,
                    body=body,
                    sqs_message_id=raw["MessageId"],
                    receipt_handle=raw["ReceiptHandle"],
                    group_id=group_id,
                    receive_count=receive_count,
                    envelope=envelope,
                    error=poison,
                    source="poison",
                )
                continue
            message = to_message(
                envelope,
                self.queue_name,
                {"sqs_message_id": raw["MessageId"], "receive_count": receive_count},
            )
            admitted.append(
                SQSMessage(
                    message,
                    envelope=envelope,
                    body=body,
                    sqs_message_id=raw["MessageId"],
                    receipt_handle=raw["ReceiptHandle"],
                    receive_count=receive_count,
                    group_id=group_id,
                    visible_until=received_at + self._visibility,
                )
            )
        taken = 0
        with self._cond:
            for item in admitted:
                if item.sqs_message_id not in self._tracked:
                    taken += 1  # a copy of a message still tracked here keeps the slot its first copy took
                self._tracked[item.sqs_message_id] = item
                group = item.group_id
                if group and (group in self._running_groups or group in self._held):
                    self._held.setdefault(group, deque()).append(item)
                else:
                    if group:
                        self._running_groups.add(group)
                    self._ready.append(item)
            self._cond.notify_all()
        return taken

    def _heartbeat_loop(self) -> None:
        while not self._closing.wait(self._tick):
            now = time.monotonic()
            with self._cond:
                due = [m for m in self._tracked.values() if m.visible_until - now < self._margin]
            if not due:
                continue
            try:
                failed = change_visibility(self._sqs, self._url, [(m.receipt_handle, self._visibility) for m in due])
            except Exception:
                log.exception("visibility heartbeat failed on %s", self._url)
                continue
            for m in due:
                if m.receipt_handle not in failed:
                    m.visible_until = now + self._visibility
