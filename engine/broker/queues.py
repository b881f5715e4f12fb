"""Queues: their specification, the catalogue of an engine's queues (``docs/design.md``, "The queue catalogue"),
provisioning, and depth reporting.

Every job kind declares its work queue (``pipelines/<kind>/kind.py``), FIFO with its own FIFO dead-letter queue;
``notifications`` is a standard queue with a standard DLQ.  The catalogue is the kinds' queues plus
``notifications`` (``pipelines/registry.py: CATALOGUE``).  Names take the configured prefix verbatim
(``{prefix}payments.fifo``).

VisibilityTimeouts are the catalogue's (work queues 300 s, ``notifications`` 60 s) unless
``PAYMENTS_SQS_VISIBILITY_TIMEOUT_SECONDS`` says otherwise: :func:`provision` then gives the work queues that value
and ``notifications`` the smaller of its own 60 s and that value.  A shorter timeout is how tests (and operators
who want a crashed worker's messages back sooner) shorten redelivery after a worker dies holding messages; the
workers' heartbeat keeps messages that are still being worked on invisible whatever the timeout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

log = logging.getLogger(__name__)

FOURTEEN_DAYS = 1_209_600
FOUR_DAYS = 345_600
#: SQS's redrive is a safety net (a message that kills its worker every time): a job is dead-lettered by the engine
#: after its third failed attempt (engine/jobs/attempts.py), and receives spent by crashes, held-back messages of a
#: FIFO group or a Stripe outage must not reach this count.
MAX_RECEIVE_COUNT = 20


@dataclass(frozen=True)
class QueueSpec:
    """One queue of the catalogue.  ``base`` is the short name (``payments``) used by actors and the CLI."""

    base: str
    kind: str
    fifo: bool
    visibility_timeout: int
    retention: int
    max_receive_count: int = MAX_RECEIVE_COUNT
    #: Retention of the DLQ: the maximum, so dead letters outlive the source messages' own retention.
    dlq_retention: int = FOURTEEN_DAYS

    def name(self, prefix: str = "") -> str:
        """The SQS queue name, e.g. ``{prefix}payments.fifo``."""
        return f"{prefix}{self.base}.fifo" if self.fifo else f"{prefix}{self.base}"

    def dlq_name(self, prefix: str = "") -> str:
        """The SQS DLQ name, e.g. ``{prefix}payments-dlq.fifo``."""
        return f"{prefix}{self.base}-dlq.fifo" if self.fifo else f"{prefix}{self.base}-dlq"

    def attributes(self) -> dict[str, str]:
        """Attributes of the work queue, without the RedrivePolicy (which needs the DLQ's ARN)."""
        attrs = {"VisibilityTimeout": str(self.visibility_timeout), "MessageRetentionPeriod": str(self.retention)}
        if self.fifo:
            attrs["FifoQueue"] = "true"
        return attrs

    def with_visibility(self, seconds: int | None) -> QueueSpec:
        """This spec under a configured work-queue VisibilityTimeout (``None``: the catalogue's own).

        Work queues take ``seconds``; the standard ``notifications`` queue takes ``min(its own, seconds)``, so a
        shorter setting shortens every queue's redelivery while the default (300) leaves the catalogue's 60 s.
        """
        if seconds is None:
            return self
        wanted = seconds if self.fifo else min(self.visibility_timeout, seconds)
        return replace(self, visibility_timeout=wanted)

    def dlq_attributes(self) -> dict[str, str]:
        """Attributes of the DLQ."""
        attrs = {"MessageRetentionPeriod": str(self.dlq_retention)}
        if self.fifo:
            attrs["FifoQueue"] = "true"
        return attrs


def work_queue(base: str, kind: str) -> QueueSpec:
    """The work queue of a job kind: FIFO, 300 s visibility, 14 days' retention, a FIFO DLQ after 20 receives
    (:data:`MAX_RECEIVE_COUNT`, the safety net)."""
    return QueueSpec(base, kind, True, 300, FOURTEEN_DAYS)


#: The standard queue the outbox relay feeds and the notifier consumes (``actors/notifications.py``).
NOTIFICATIONS = QueueSpec("notifications", "notification", False, 60, FOUR_DAYS)


def queue_base(name: str) -> str:
    """The short (Dramatiq) name of an unprefixed SQS queue name: ``payments.fifo`` → ``payments``."""
    return name.removesuffix(".fifo")


@dataclass(frozen=True)
class QueueRef:
    """A resolved queue name: the catalogue entry and whether the DLQ was meant."""

    spec: QueueSpec
    dlq: bool = False

    def name(self, prefix: str = "") -> str:
        return self.spec.dlq_name(prefix) if self.dlq else self.spec.name(prefix)


@dataclass(frozen=True)
class ConsumedQueue:
    """A declared queue as the broker resolved it for a consumer: names, URLs and visibility timeout.

    ``name`` is the Dramatiq queue name (``payments``); ``sqs_name`` the SQS name with the prefix
    (``{prefix}payments.fifo``); ``visibility_timeout`` is SQS's, read once.
    """

    name: str
    sqs_name: str
    fifo: bool
    url: str
    dlq_url: str
    visibility_timeout: int


@dataclass(frozen=True)
class QueueCatalogue:
    """The queues of one engine, in order: each job kind's work queue, then ``notifications``."""

    specs: tuple[QueueSpec, ...]

    @classmethod
    def of(cls, work_queues: Iterable[QueueSpec]) -> QueueCatalogue:
        """The catalogue of these work queues and :data:`NOTIFICATIONS`.  Raises :class:`ValueError` when two
        queues share a name or a kind."""
        specs = (*work_queues, NOTIFICATIONS)
        for attribute in ("base", "kind"):
            values = [getattr(s, attribute) for s in specs]
            if len(set(values)) != len(values):
                raise ValueError(f"two catalogue queues share a {attribute}: {values}")
        return cls(specs)

    def __iter__(self) -> Iterator[QueueSpec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, index: int) -> QueueSpec:
        return self.specs[index]

    def resolve(self, name: str, prefix: str = "") -> QueueRef:
        """Resolve ``payments``, ``payments.fifo``, ``payments-dlq.fifo`` (optionally with ``prefix``).

        Raises:
            KeyError: the name is not one of the catalogue's queues or DLQs.
        """
        bare = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        bare = bare.removesuffix(".fifo")
        dlq = bare.endswith("-dlq")
        bare = bare.removesuffix("-dlq")
        spec = next((s for s in self.specs if s.base == bare), None)
        if spec is None:
            known = ", ".join(s.base for s in self.specs)
            raise KeyError(f"unknown queue {name!r} (known: {known})")
        # "payments" and "payments.fifo" are fine; "notifications.fifo" or "payments" spelled without the suffix
        # where the real name has one are accepted (the short name) but a wrong suffix is not.
        if name.endswith(".fifo") and not spec.fifo:
            raise KeyError(f"unknown queue {name!r}: {spec.base} is a standard queue")
        return QueueRef(spec, dlq)

    def for_kind(self, kind: str) -> QueueSpec | None:
        """The queue that carries jobs of ``kind`` (``payment`` → ``payments``), if any."""
        return next((s for s in self.specs if s.kind == kind), None)


@dataclass(frozen=True)
class ProvisionedQueue:
    """What :func:`provision` did for one queue: its URL, its DLQ's URL, and whether either was created."""

    name: str
    url: str
    dlq_name: str
    dlq_url: str
    created: bool
    dlq_created: bool
    updated: bool


def _ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, bool, bool]:
    """Create ``name`` or bring its attributes in line; return ``(url, created, updated)``."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = None
    if url is None:
        try:
            return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], True, False
        except sqs.exceptions.QueueNameExists:
            # Created concurrently by another process, with other attributes: fall through and align them.
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
    # FifoQueue cannot be changed after creation; the name's suffix decides it anyway.
    wanted = {k: v for k, v in attributes.items() if k != "FifoQueue"}
    changed = {k: v for k, v in wanted.items() if not _same_attribute(k, current.get(k), v)}
    if changed:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=changed)
    return url, False, bool(changed)


def _same_attribute(key: str, current: str | None, wanted: str) -> bool:
    if current is None:
        return False
    if key == "RedrivePolicy":
        try:
            a, b = json.loads(current), json.loads(wanted)
        except ValueError:
            return False
        return bool(
            a.get("deadLetterTargetArn") == b.get("deadLetterTargetArn")
            and int(a.get("maxReceiveCount", 0)) == int(b.get("maxReceiveCount", 0))
        )
    return current == wanted


def provision(
    sqs: Any,
    prefix: str,
    specs: Iterable[QueueSpec],
    *,
    visibility_timeout: int | None = None,
) -> list[ProvisionedQueue]:
    """Create every queue of ``specs`` (a catalogue) and its DLQ (idempotent) and return what was done per queue.

    The DLQ is created first so the work queue can name it in its RedrivePolicy.  An existing queue whose
    attributes differ from the catalogue gets them set with SetQueueAttributes.  ``visibility_timeout`` is the
    setting ``sqs.visibility_timeout_seconds`` (see :meth:`QueueSpec.with_visibility`); ``None`` keeps the
    catalogue's timeouts.

    Raises:
        botocore.exceptions.ClientError: SQS refused a call (permissions, quota, a name taken by a queue of the
            other type).
    """
    done: list[ProvisionedQueue] = []
    for spec in (s.with_visibility(visibility_timeout) for s in specs):
        dlq_url, dlq_created, dlq_updated = _ensure_queue(sqs, spec.dlq_name(prefix), spec.dlq_attributes())
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attrs = spec.attributes()
        attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
        )
        url, created, updated = _ensure_queue(sqs, spec.name(prefix), attrs)
        done.append(
            ProvisionedQueue(
                name=spec.name(prefix),
                url=url,
                dlq_name=spec.dlq_name(prefix),
                dlq_url=dlq_url,
                created=created,
                dlq_created=dlq_created,
                updated=updated or dlq_updated,
            )
        )
        log.info("queue %s ready (created=%s)", spec.name(prefix), created)
    return done


_DEPTH_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def queue_depths(sqs: Any, prefix: str, specs: Iterable[QueueSpec]) -> list[dict[str, Any]]:
    """Depth of every queue of ``specs``: ``{name, type, visible, in_flight, delayed, dlq: {name, visible}}``.

    A queue that does not exist is reported with ``None`` counts (so ``queues ls`` shows what is missing).

    Raises:
        botocore.exceptions.ClientError: SQS refused a call other than "queue does not exist".
    """
    rows: list[dict[str, Any]] = []
    for spec in specs:
        main = queue_attributes(sqs, spec.name(prefix), _DEPTH_ATTRIBUTES)
        dlq = queue_attributes(sqs, spec.dlq_name(prefix), _DEPTH_ATTRIBUTES)
        rows.append(
            {
                "name": spec.name(prefix),
                "type": "fifo" if spec.fifo else "standard",
                "visible": _int(main, "ApproximateNumberOfMessages"),
                "in_flight": _int(main, "ApproximateNumberOfMessagesNotVisible"),
                "delayed": _int(main, "ApproximateNumberOfMessagesDelayed"),
                "dlq": {"name": spec.dlq_name(prefix), "visible": _int(dlq, "ApproximateNumberOfMessages")},
            }
        )
    return rows


def queue_attributes(sqs: Any, name: str, names: list[str] | None = None) -> dict[str, str] | None:
    """The attributes ``names`` (default: all) of the queue called ``name``, or ``None`` when it does not exist.

    Raises:
        botocore.exceptions.ClientError: SQS refused a call other than "queue does not exist".
    """
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return None
    attrs: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names or ["All"]).get(
        "Attributes", {}
    )
    return attrs


def _int(attrs: dict[str, str] | None, key: str) -> int | None:
    return None if attrs is None else int(attrs.get(key, 0))
