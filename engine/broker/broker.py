"""``SQSBroker``: a Dramatiq broker for SQS FIFO and standard queues, built for batching and SQS-native retries.

How it differs from ``dramatiq_sqs`` and why (see ``docs/design/broker.md``):

- FIFO: MessageGroupId from the group key, MessageDeduplicationId from the idempotency scope (never random).
- Batches: SendMessageBatch for :meth:`SQSBroker.enqueue_many`, ReceiveMessage of 10 with long polling,
  DeleteMessageBatch for acks; partial failures handled entry by entry.
- Retries by visibility (no ``Retries`` middleware, no re-sent message), dead letters by SQS's RedrivePolicy, a
  reason recorded via a :class:`~engine.broker.dead_letters.DeadLetterSink`.

The consumer (:mod:`engine.broker.consumer`) gets what it needs from here as arguments (the queue's URLs, the
client, the delete buffer, :class:`~engine.broker.dead_letters.DeadLetters`), so it never imports the broker.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
import weakref
from typing import Any

import dramatiq
from dramatiq.errors import QueueJoinTimeout, QueueNotFound
from dramatiq.middleware import Middleware, default_middleware
from dramatiq.middleware.retries import Retries

from engine.broker.batching import DeleteBuffer, call_batch, chunks
from engine.broker.capacity import Capacity
from engine.broker.client import make_client
from engine.broker.config import BrokerConfig
from engine.broker.consumer import Gate, SQSConsumer
from engine.broker.dead_letters import DeadLetters, DeadLetterSink, LoggingDeadLetterSink
from engine.broker.envelope import from_message
from engine.broker.errors import BatchSendError, DeadLetterRequested, FailedEntry
from engine.broker.ids import deduplication_id, message_group_id
from engine.broker.middleware import VisibilityRetries
from engine.broker.queues import ConsumedQueue, QueueCatalogue, QueueRef, provision

log = logging.getLogger(__name__)

#: SQS's per-message DelaySeconds limit (standard queues only; FIFO queues refuse per-message delays).
MAX_DELAY_SECONDS = 900


def default_broker_middleware() -> list[Middleware]:
    """Dramatiq's default middleware without ``Retries`` (it re-enqueues), plus :class:`VisibilityRetries`."""
    return [m() for m in default_middleware if m is not Retries] + [VisibilityRetries()]


class SQSBroker(dramatiq.Broker):
    """A Dramatiq broker on SQS for the queues of a :class:`~engine.broker.queues.QueueCatalogue`.

    Parameters:
        catalogue: the queues actors may declare (``pipelines/registry.py: CATALOGUE``).
        sqs: a boto3 SQS client (shared by every thread; boto3 clients are thread-safe).  When ``None``, one is
            made from ``endpoint_url``/``region`` with the default credential chain.
        prefix: put verbatim before every queue name (``PAYMENTS_QUEUE_PREFIX``).
        config: timing knobs (:class:`BrokerConfig`; defaults match the settings' defaults).
        dead_letter_sink: where dead-letter reasons go (default: the log).
        middleware: the full middleware list; default :func:`default_broker_middleware`.  A list containing
            ``Retries`` is refused.
        auto_provision: create a missing queue (with its DLQ) on first use instead of failing.
        dead_letter_exceptions: exceptions that send a message to the DLQ at once when an actor raises them
            (source ``explicit``), besides those in an actor's ``throws`` option.

    Dramatiq queue names are the catalogue's short names (``payments``) or full names (``payments.fifo``);
    messages carry one :class:`~engine.broker.envelope.Envelope` dict each.

    Raises:
        ValueError: ``middleware`` contains ``Retries``.
    """

    def __init__(
        self,
        sqs: Any = None,
        *,
        catalogue: QueueCatalogue,
        endpoint_url: str | None = None,
        region: str = "eu-west-1",
        prefix: str = "",
        config: BrokerConfig | None = None,
        dead_letter_sink: DeadLetterSink | None = None,
        middleware: list[Middleware] | None = None,
        auto_provision: bool = False,
        dead_letter_exceptions: tuple[type[BaseException], ...] = (DeadLetterRequested,),
    ) -> None:
        if middleware is not None and any(isinstance(m, Retries) for m in middleware):
            raise ValueError("SQSBroker retries by visibility; Dramatiq's Retries middleware must not be used")
        super().__init__(middleware=default_broker_middleware() if middleware is None else middleware)
        if not any(isinstance(m, VisibilityRetries) for m in self.middleware):
            self.add_middleware(VisibilityRetries())
        self.sqs = sqs if sqs is not None else make_client("sqs", endpoint_url=endpoint_url, region=region)
        self.catalogue = catalogue
        self.prefix = prefix
        self.config = config or BrokerConfig()
        self.sink: DeadLetterSink = dead_letter_sink or LoggingDeadLetterSink()
        self.auto_provision = auto_provision
        self.dead_letter_exceptions = dead_letter_exceptions
        self.queues: dict[str, QueueRef] = {}
        self._urls: dict[str, str] = {}
        self._dlq_urls: dict[str, str] = {}
        self._visibility: dict[str, int] = {}
        self._lookup_lock = threading.Lock()
        self.deleter = DeleteBuffer(self.sqs, self.config.delete_flush_seconds)
        self.dead_letters = DeadLetters(self.sqs, self.sink, self.deleter)
        self._consumers: weakref.WeakSet[SQSConsumer] = weakref.WeakSet()
        self._gates: dict[str, Gate] = {}
        #: The worker's thread count (:meth:`set_worker_threads`); None: read from Dramatiq's prefetch.
        self.worker_threads: int | None = None
        self._capacity: Capacity | None = None

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """Dramatiq's middleware signal, plus: at worker shutdown, stop every consumer's receiver first."""
        if signal == "worker_shutdown":
            for consumer in list(self._consumers):
                consumer.stop_receiving()
        super().emit_before(signal, *args, **kwargs)

    # -- queues ----------------------------------------------------------------------------------------------

    def declare_queue(self, queue_name: str) -> None:
        """Declare a catalogue queue (idempotent).  No SQS call: URLs are looked up on first use.

        Raises:
            KeyError: ``queue_name`` is not a catalogue queue (or names a DLQ).
        """
        if queue_name in self.queues:
            return
        ref = self.catalogue.resolve(queue_name)
        if ref.dlq:
            raise KeyError(f"{queue_name!r} is a dead-letter queue; actors cannot consume it")
        self.emit_before("declare_queue", queue_name)
        self.queues[queue_name] = ref
        self.emit_after("declare_queue", queue_name)

    def get_declared_delay_queues(self) -> set[str]:
        """None: delays are SQS's (DelaySeconds on standard queues), not Dramatiq delay queues."""
        return set()

    def queue_ref(self, queue_name: str) -> QueueRef:
        """The catalogue entry of a declared queue.

        Raises:
            dramatiq.errors.QueueNotFound: the queue was never declared.
        """
        try:
            return self.queues[queue_name]
        except KeyError:
            raise QueueNotFound(queue_name) from None

    def sqs_name(self, queue_name: str) -> str:
        """The SQS name of a declared queue (prefix included)."""
        return self.queue_ref(queue_name).name(self.prefix)

    def queue_url(self, queue_name: str) -> str:
        """The SQS URL of a declared queue (looked up once; provisioned first when ``auto_provision``).

        Raises:
            dramatiq.errors.QueueNotFound: not declared, or missing in SQS without ``auto_provision``.
        """
        url = self._urls.get(queue_name)
        if url is not None:
            return url
        ref = self.queue_ref(queue_name)
        with self._lookup_lock:
            if queue_name not in self._urls:
                try:
                    url = self.sqs.get_queue_url(QueueName=ref.name(self.prefix))["QueueUrl"]
                    dlq_url = self.sqs.get_queue_url(QueueName=ref.spec.dlq_name(self.prefix))["QueueUrl"]
                except self.sqs.exceptions.QueueDoesNotExist:
                    if not self.auto_provision:
                        raise QueueNotFound(
                            f"{ref.name(self.prefix)} does not exist in SQS (run `payments queues create`)"
                        ) from None
                    (done,) = provision(self.sqs, self.prefix, (ref.spec,))
                    url, dlq_url = done.url, done.dlq_url
                self._urls[queue_name], self._dlq_urls[queue_name] = url, dlq_url
            return self._urls[queue_name]

    def dlq_url(self, queue_name: str) -> str:
        """The SQS URL of a declared queue's DLQ."""
        self.queue_url(queue_name)
        return self._dlq_urls[queue_name]

    def visibility_timeout(self, queue_name: str) -> int:
        """The queue's VisibilityTimeout as SQS has it (read once; tests shorten it)."""
        if queue_name not in self._visibility:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url(queue_name), AttributeNames=["VisibilityTimeout"]
            )["Attributes"]
            self._visibility[queue_name] = int(attrs["VisibilityTimeout"])
        return self._visibility[queue_name]

    # -- sending ---------------------------------------------------------------------------------------------

    def send_entry(
        self, message: dramatiq.Message[Any], delay: int | None = None
    ) -> tuple[dramatiq.Message[Any], dict[str, Any]]:
        """The SQS send parameters for ``message`` and the message as it will be delivered.

        Raises:
            ValueError: the message does not carry an envelope, a FIFO message has no group, or a delay is asked
                on a FIFO queue (SQS refuses per-message delays there) or beyond 15 minutes.
            pydantic.ValidationError: the envelope breaks the schema.
        """
        ref = self.queue_ref(message.queue_name)
        envelope = from_message(message)
        options = message.options
        # The envelope's message_id is the message's identity from here on (it is what the consumer sees).
        sent = message.copy(message_id=envelope.message_id, args=(envelope.to_arg(),))
        entry: dict[str, Any] = {"MessageBody": envelope.to_json()}
        if ref.spec.fifo:
            if delay:
                raise ValueError(f"{ref.name(self.prefix)}: FIFO queues do not support per-message delays")
            group_key = options.get("group_id") or envelope.group_id
            if not group_key:
                raise ValueError(f"{ref.name(self.prefix)}: a FIFO message needs a group_id")
            entry["MessageGroupId"] = message_group_id(str(group_key))
            entry["MessageDeduplicationId"] = deduplication_id(
                str(options.get("dedup_scope") or envelope.idempotency_scope), str(options.get("dedup_suffix", ""))
            )
        elif delay:
            seconds = math.ceil(delay / 1000)
            if seconds > MAX_DELAY_SECONDS:
                raise ValueError(f"SQS delays messages at most {MAX_DELAY_SECONDS} s, not {seconds} s")
            entry["DelaySeconds"] = seconds
        return sent, entry

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        """Send one message with SendMessage (one call: the caller usually waits for durability, e.g. a 202).

        Returns the message as delivered (``message_id`` = the envelope's).

        Raises:
            ValueError, pydantic.ValidationError: see :meth:`send_entry`.
            botocore.exceptions.ClientError: SQS refused the message.
        """
        sent, entry = self.send_entry(message, delay)
        self.emit_before("enqueue", sent, delay)
        self.sqs.send_message(QueueUrl=self.queue_url(message.queue_name), **entry)
        self.emit_after("enqueue", sent, delay)
        return sent

    def enqueue_many(self, messages: list[dramatiq.Message[Any]]) -> list[dramatiq.Message[Any]]:
        """Send many messages with SendMessageBatch, 10 per call, in order per queue.

        Failed entries are retried entry by entry (when SQS says it was not the sender's fault); every batch is
        attempted even if an earlier one had failures.

        Raises:
            ValueError, pydantic.ValidationError: a message cannot be sent at all (nothing was sent).
            BatchSendError: some entries still failed; ``failed`` names them with SQS's reasons, ``sent`` the
                rest.
            botocore.exceptions.ClientError: a whole call failed (after botocore's retries).
        """
        prepared = [self.send_entry(m) for m in messages]
        by_queue: dict[str, list[tuple[dramatiq.Message[Any], dict[str, Any]]]] = {}
        for original, (sent, entry) in zip(messages, prepared, strict=True):
            by_queue.setdefault(original.queue_name, []).append((sent, entry))
        failed: dict[str, FailedEntry] = {}
        sent_ids: list[str] = []
        for queue_name, items in by_queue.items():
            url = self.queue_url(queue_name)
            for chunk in chunks(items):
                for sent, _ in chunk:
                    self.emit_before("enqueue", sent, None)
                entries = [{"Id": str(i), **entry} for i, (_, entry) in enumerate(chunk)]
                _, chunk_failed = call_batch(functools.partial(self._send_batch, url), entries)
                for i, (sent, _) in enumerate(chunk):
                    if str(i) in chunk_failed:
                        failed[sent.message_id] = chunk_failed[str(i)]
                    else:
                        sent_ids.append(sent.message_id)
                        self.emit_after("enqueue", sent, None)
        if failed:
            raise BatchSendError(", ".join(by_queue), failed, sent_ids)
        return [sent for sent, _ in prepared]

    def _send_batch(self, url: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        answer: dict[str, Any] = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        return answer

    # -- consuming -------------------------------------------------------------------------------------------

    def set_gate(self, queue_name: str, gate: Gate) -> None:
        """Gate the consumers of a catalogue queue made from now on (:data:`engine.broker.consumer.Gate`): they
        take work only while ``gate()`` admits it.  Raises :class:`KeyError` for a name outside the catalogue."""
        self._gates[self.catalogue.resolve(queue_name).spec.base] = gate

    def set_worker_threads(self, threads: int) -> None:
        """Tell the broker how many threads the worker runs, before it starts (``payments worker`` does): every
        consumer then shares one :class:`~engine.broker.capacity.Capacity` of ``threads + prefetch_margin``."""
        self.worker_threads = threads

    def capacity(self, prefetch: int) -> Capacity:
        """The held-message limit every consumer of this broker shares: the worker's threads (when not set,
        Dramatiq's default prefetch of ``2 × threads`` tells them) plus ``config.prefetch_margin``."""
        with self._lookup_lock:
            if self._capacity is None:
                threads = self.worker_threads or max(1, prefetch // 2)
                self._capacity = Capacity(threads + self.config.prefetch_margin)
            return self._capacity

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> SQSConsumer:
        """A consumer of ``queue_name`` (see :class:`SQSConsumer`), sharing the broker's :meth:`capacity`.

        Raises:
            dramatiq.errors.QueueNotFound: the queue was never declared or does not exist in SQS.
        """
        consumer = SQSConsumer(
            self.consumed_queue(queue_name),
            prefetch,
            timeout,
            sqs=self.sqs,
            config=self.config,
            deleter=self.deleter,
            dead_letters=self.dead_letters,
            get_actor=self.get_actor,
            dead_letter_exceptions=self.dead_letter_exceptions,
            gate=self._gates.get(self.queue_ref(queue_name).spec.base),
            capacity=self.capacity(prefetch),
        )
        self._consumers.add(consumer)
        return consumer

    def consumed_queue(self, queue_name: str) -> ConsumedQueue:
        """A declared queue's names, URLs and VisibilityTimeout, as a consumer and the DLQ mover need them.

        Raises:
            dramatiq.errors.QueueNotFound: the queue was never declared or does not exist in SQS.
        """
        ref = self.queue_ref(queue_name)
        return ConsumedQueue(
            name=queue_name,
            sqs_name=ref.name(self.prefix),
            fifo=ref.spec.fifo,
            url=self.queue_url(queue_name),
            dlq_url=self.dlq_url(queue_name),
            visibility_timeout=self.visibility_timeout(queue_name),
        )

    # -- housekeeping ----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush pending deletes and stop the flusher thread."""
        self.deleter.close()

    def flush(self, queue_name: str) -> None:
        """Drop every message of a declared queue (PurgeQueue; SQS allows one purge a minute per queue)."""
        self.sqs.purge_queue(QueueUrl=self.queue_url(queue_name))

    def flush_all(self) -> None:
        """Purge every declared queue."""
        for name in self.queues:
            self.flush(name)

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Wait until the queue holds no visible, in-flight or delayed message (tests).

        Raises:
            dramatiq.errors.QueueJoinTimeout: ``timeout`` milliseconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        url = self.queue_url(queue_name)
        while True:
            self.deleter.flush(url)
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            if sum(int(v) for v in attrs.values()) == 0:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise QueueJoinTimeout(queue_name)
            time.sleep(0.1)
