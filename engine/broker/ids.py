"""The two SQS identifier rules (``docs/message-contract.md``): MessageGroupId and MessageDeduplicationId.

Each rule lives in exactly one function so the broker, the DLQ tools and upstream documentation agree.
"""

from __future__ import annotations

import hashlib
import re

#: SQS allows 1-128 characters of alphanumerics and ASCII punctuation (no spaces, no control characters).
MAX_ID_LENGTH = 128
_SQS_ID = re.compile(r"^[!-~]{1,128}$")
_SUFFIX = re.compile(r"^(:(replay|reconcile|review):[1-9][0-9]{0,8})?$")


def sha256_hex(value: str) -> str:
    """Hex SHA-256 of ``value`` encoded as UTF-8 (64 characters)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def is_valid_sqs_id(value: str) -> bool:
    """True when ``value`` may be used verbatim as a MessageGroupId or MessageDeduplicationId."""
    return bool(_SQS_ID.match(value))


def message_group_id(key: str) -> str:
    """The MessageGroupId for a group key (customer id, terminal id, Stripe object id, …).

    The key itself when it satisfies SQS's rules (1-128 characters, alphanumeric and punctuation), else its
    SHA-256 hex, so that any key (spaces, non-ASCII, too long) still maps to one stable group.

    Raises:
        ValueError: ``key`` is empty (an empty group would silently merge unrelated work).
    """
    if not key:
        raise ValueError("a message group key must not be empty")
    return key if is_valid_sqs_id(key) else sha256_hex(key)


def deduplication_id(scope: str, suffix: str = "") -> str:
    """The MessageDeduplicationId: SHA-256 hex of the job's idempotency scope plus an optional suffix.

    ``suffix`` is ``""``, ``":replay:N"``, ``":reconcile:N"`` or ``":review:N"`` (N ≥ 1) so that a deliberate
    re-send is not swallowed by SQS's five-minute deduplication window.  Never random.

    Raises:
        ValueError: ``scope`` is empty or ``suffix`` has another shape.
    """
    if not scope:
        raise ValueError("an idempotency scope must not be empty")
    if not _SUFFIX.match(suffix):
        raise ValueError(f"dedup suffix must be ':replay:N', ':reconcile:N' or ':review:N', not {suffix!r}")
    return sha256_hex(scope) + suffix


def dlq_deduplication_id(message_id: str) -> str:
    """Dedup id of a message the engine itself sends to a FIFO DLQ (poison, explicit dead letter)."""
    value = f"dlq:{message_id}"
    return value if is_valid_sqs_id(value) else "dlq:" + sha256_hex(message_id)
