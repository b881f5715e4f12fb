"""Drift check: every live queue's attributes against what the engine requires of it (`payments queues check`).

The queues may have been made by anything: :func:`engine.broker.queues.provision`, the CloudFormation template
under ``deploy/aws/`` or a hand at the console.  :func:`compare` reads two attribute maps (the queue's and its
DLQ's, as ``GetQueueAttributes`` answers) and returns each difference from the catalogue; :func:`check_queues`
fetches them.  A difference is *unsafe* when consuming the queue would lose messages or break exactly-once:

- the queue or its dead-letter queue is missing, or the queue has no RedrivePolicy, or it redrives somewhere
  other than its own DLQ (a message failing past the retention would be dropped, or land where no engine tool
  looks);
- ContentBasedDeduplication is on for a FIFO work queue (two jobs with equal bodies would be taken for one, and a
  re-send under a new deduplication id would be dropped as a duplicate of the first).

The worker refuses to consume an unsafe queue (:func:`engine.runtime.worker.safe_queues`); every other difference
(visibility, retention, redrive count, encryption) is reported and the worker runs on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from engine.broker.queues import QueueSpec, queue_attributes


@dataclass(frozen=True)
class Difference:
    """One attribute of one queue that is not what the engine requires."""

    queue: str
    attribute: str
    expected: str
    actual: str | None
    unsafe: bool

    def describe(self) -> str:
        """One line for a person: ``payments.fifo: VisibilityTimeout is 120, expected 300``."""
        actual = "missing" if self.actual is None else self.actual
        tag = " (unsafe: the worker refuses this queue)" if self.unsafe else ""
        return f"{self.queue}: {self.attribute} is {actual}, expected {self.expected}{tag}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    spec: QueueSpec,
    prefix: str,
    queue: dict[str, str] | None,
    dlq: dict[str, str] | None,
    *,
    visibility_timeout: int | None = None,
) -> list[Difference]:
    """Every difference between the live attributes of ``spec``'s queue and DLQ and what the engine requires.

    ``queue``/``dlq`` are ``GetQueueAttributes(All)`` answers, ``None`` for a queue that does not exist.
    ``visibility_timeout`` is the setting ``sqs.visibility_timeout_seconds`` (see
    :meth:`QueueSpec.with_visibility`).  Never raises on odd values: an unparsable RedrivePolicy is a difference.
    """
    spec = spec.with_visibility(visibility_timeout)
    name, dlq_name = spec.name(prefix), spec.dlq_name(prefix)
    found: list[Difference] = []

    def differ(queue_name: str, attribute: str, expected: object, actual: str | None, unsafe: bool = False) -> None:
        found.append(Difference(queue_name, attribute, str(expected), actual, unsafe))

    if queue is None:
        differ(name, "existence", "a queue", None, unsafe=True)
    if dlq is None:
        differ(dlq_name, "existence", "a dead-letter queue", None, unsafe=True)
    if queue is not None:
        _common(spec, name, queue, spec.visibility_timeout, spec.retention, differ, dlq=False)
        _redrive(spec, queue, dlq, differ, name, dlq_name)
    if dlq is not None:
        _common(spec, dlq_name, dlq, None, spec.dlq_retention, differ, dlq=True)
    return found


def _common(
    spec: QueueSpec, name: str, attrs: dict[str, str], visibility: int | None, retention: int, differ: Any, dlq: bool
) -> None:
    fifo = attrs.get("FifoQueue", "false").lower()
    if fifo != str(spec.fifo).lower():
        differ(name, "FifoQueue", str(spec.fifo).lower(), fifo, True)
    if spec.fifo:
        dedup = attrs.get("ContentBasedDeduplication", "false").lower()
        if dedup != "false":
            # On the DLQ the engine always sends its own deduplication id: drift, not a lost message.
            differ(name, "ContentBasedDeduplication", "false", dedup, not dlq)
    if visibility is not None and attrs.get("VisibilityTimeout") != str(visibility):
        differ(name, "VisibilityTimeout", visibility, attrs.get("VisibilityTimeout"))
    if attrs.get("MessageRetentionPeriod") != str(retention):
        differ(name, "MessageRetentionPeriod", retention, attrs.get("MessageRetentionPeriod"))
    if not _encrypted(attrs):
        differ(name, "encryption", "KmsMasterKeyId or SqsManagedSseEnabled", "none")


def _encrypted(attrs: dict[str, str]) -> bool:
    return bool(attrs.get("KmsMasterKeyId")) or attrs.get("SqsManagedSseEnabled", "false").lower() == "true"


def _redrive(
    spec: QueueSpec, queue: dict[str, str], dlq: dict[str, str] | None, differ: Any, name: str, dlq_name: str
) -> None:
    raw = queue.get("RedrivePolicy")
    if not raw:
        differ(name, "RedrivePolicy", f"to {dlq_name} after {spec.max_receive_count} receives", None, True)
        return
    try:
        policy = json.loads(raw)
        target, count = str(policy["deadLetterTargetArn"]), int(policy["maxReceiveCount"])
    except (ValueError, KeyError, TypeError):
        differ(name, "RedrivePolicy", f"to {dlq_name} after {spec.max_receive_count} receives", raw, True)
        return
    # The DLQ's ARN when it exists; when it does not (reported above) the name is all there is to compare.
    if dlq is not None and dlq.get("QueueArn"):
        expected_target, same = dlq["QueueArn"], target == dlq["QueueArn"]
    else:
        expected_target, same = dlq_name, target.rsplit(":", 1)[-1] == dlq_name
    if not same:
        differ(name, "RedrivePolicy.deadLetterTargetArn", expected_target, target, True)
    if count != spec.max_receive_count:
        differ(name, "RedrivePolicy.maxReceiveCount", spec.max_receive_count, str(count))


def check_queues(
    sqs: Any,
    prefix: str,
    specs: Iterable[QueueSpec],
    *,
    visibility_timeout: int | None = None,
) -> list[Difference]:
    """Read every queue of ``specs`` and its DLQ from SQS and return every difference (empty: all as required).

    Raises:
        botocore.exceptions.ClientError: SQS refused a call other than "queue does not exist".
    """
    found: list[Difference] = []
    for spec in specs:
        queue = queue_attributes(sqs, spec.name(prefix))
        dlq = queue_attributes(sqs, spec.dlq_name(prefix))
        found.extend(compare(spec, prefix, queue, dlq, visibility_timeout=visibility_timeout))
    return found


def unsafe_queues(differences: list[Difference], prefix: str, specs: Iterable[QueueSpec]) -> set[str]:
    """The base names (``payments``) of the catalogue queues that an unsafe difference makes unfit to consume."""
    bad = {d.queue for d in differences if d.unsafe}
    return {s.base for s in specs if s.name(prefix) in bad or s.dlq_name(prefix) in bad}
