"""The versioned JSON message envelope: the SQS message body of every engine queue.

Upstream systems in any language may enqueue directly by sending this JSON (schema:
``docs/message-envelope.schema.json``, prose: ``docs/message-contract.md``).  Inside the engine an envelope
travels as a :class:`dramatiq.Message` whose single positional argument is the envelope as a JSON dict, so an
actor is ``def process_payment(envelope: dict) -> None``.

A body that is not JSON, fails the schema, or names an actor the worker does not know is *poison*
(:class:`PoisonMessage`): it goes straight to the dead-letter queue.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import dramatiq
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from engine.broker.errors import PoisonMessage
from engine.domain.pan import contains_pan, find_pan

ENVELOPE_VERSION: Literal[1] = 1
_KIND_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_ACTOR_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_.-]{0,127}$"


class Envelope(BaseModel):
    """Version 1 of the message envelope.  Unknown top-level fields are refused (they would be silently lost)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(description="Envelope version; this document describes version 1.")
    message_id: str = Field(min_length=1, max_length=128, description="Producer-chosen unique id (a UUID).")
    kind: str = Field(
        pattern=_KIND_PATTERN,
        description="What the job is: payment, refund, subscription, settlement, webhook, notification, …",
    )
    actor: str | None = Field(
        default=None,
        pattern=_ACTOR_PATTERN,
        description="Dramatiq actor to run; default `process_{kind}`.",
    )
    job_id: str | None = Field(
        default=None, max_length=128, description="The engine's job id; absent when enqueued by an upstream system."
    )
    idempotency_scope: str = Field(
        min_length=1,
        max_length=1024,
        description="The job's idempotency scope; MessageDeduplicationId = sha256 hex of it (+ replay suffix).",
    )
    group_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Ordering key (customer id, terminal id, Stripe object id); required on FIFO queues.",
    )
    correlation_id: str | None = Field(default=None, max_length=255, description="Carried into every log line.")
    created_at: AwareDatetime = Field(description="When the producer created the message (ISO 8601 with offset).")
    data: dict[str, Any] = Field(description="The kind-specific payload.")

    @classmethod
    def new(
        cls,
        *,
        kind: str,
        data: dict[str, Any],
        idempotency_scope: str,
        group_id: str | None = None,
        job_id: str | None = None,
        actor: str | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        """A fresh envelope with a new ``message_id`` and ``created_at`` = now (UTC).

        Raises:
            pydantic.ValidationError: a field breaks the schema.
        """
        return cls(
            version=ENVELOPE_VERSION,
            message_id=str(uuid.uuid4()),
            kind=kind,
            actor=actor,
            job_id=job_id,
            idempotency_scope=idempotency_scope,
            group_id=group_id,
            correlation_id=correlation_id,
            created_at=datetime.now(UTC),
            data=data,
        )

    @property
    def actor_name(self) -> str:
        """The actor this envelope runs: ``actor`` if given, else ``process_{kind}``."""
        return self.actor or default_actor_for_kind(self.kind)

    def to_json(self) -> str:
        """The SQS body: compact JSON, ``None`` fields left out."""
        return self.model_dump_json(exclude_none=True)

    def to_arg(self) -> dict[str, Any]:
        """The envelope as the JSON dict an actor receives."""
        return self.model_dump(mode="json", exclude_none=True)


def default_actor_for_kind(kind: str) -> str:
    """The actor an envelope without ``actor`` runs: ``process_{kind}`` (``payment`` → ``process_payment``)."""
    return f"process_{kind}"


#: The reason of a message refused because it holds what looks like a card number (issue 14 item 3).
PAN_DETECTED = "pan_detected"
# What a redacted body keeps: the identifiers an operator needs, never data.
_REDACTED_KEEPS = ("version", "message_id", "kind", "job_id", "group_id", "correlation_id", "created_at")


def parse_body(body: str) -> Envelope:
    """Decode an SQS body into an :class:`Envelope`, after the card-number scan (``engine.domain.pan``) of every
    string, key and integer in it (of the raw text when it is not JSON).

    Raises:
        PoisonMessage: the body holds what looks like a card number (reason ``pan_detected``; the number is not
            in the message), is not JSON, or does not satisfy the envelope schema.
    """
    try:
        raw = json.loads(body)
    except ValueError as exc:
        if contains_pan(body):
            raise PoisonMessage(PAN_DETECTED, "the body holds what looks like a card number") from None
        raise PoisonMessage("undecodable", f"body is not JSON: {exc}") from None
    where = find_pan(raw)
    if where is not None:
        raise PoisonMessage(PAN_DETECTED, f"what looks like a card number at {where}")
    if not isinstance(raw, dict):
        raise PoisonMessage("schema_invalid", "body is not a JSON object")
    try:
        return Envelope.model_validate(raw)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise PoisonMessage("schema_invalid", f"envelope schema: {errors}") from exc


def redacted_body(body: str) -> str:
    """What is kept of a body that holds a card number: a JSON object with ``"redacted": "pan_detected"`` and the
    envelope's identifying fields (``message_id``, ``kind``, ``job_id``, …) that are plain strings or integers and
    hold no card number themselves.  Never any ``data``."""
    data = body_object(body) or {}
    kept: dict[str, Any] = {
        k: data[k]
        for k in _REDACTED_KEEPS
        if isinstance(data.get(k), (str, int)) and not isinstance(data[k], bool) and find_pan(data[k]) is None
    }
    kept["redacted"] = PAN_DETECTED
    return json.dumps(kept, separators=(",", ":"))


def safe_body(body: str) -> str:
    """``body`` itself when it holds no card number, else :func:`redacted_body` (for anything that stores or
    prints a message body: dead-letter rows, ``payments dlq show``)."""
    # Both the parsed values (escapes like \u0034 undone) and the raw text: a false hit only costs a redaction.
    try:
        hit = find_pan(json.loads(body)) is not None
    except ValueError:
        hit = False
    return redacted_body(body) if hit or contains_pan(body) else body


def body_object(body: str) -> dict[str, Any] | None:
    """The body as a JSON object, whether or not it is a valid envelope; ``None`` when it is not JSON or not an
    object.  What a poison message still says about its job is read from here."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def job_fields(body: str) -> dict[str, str]:
    """The string fields ``job_id``, ``kind`` and ``group_id`` that a body names, envelope or not (``{}`` when none)."""
    data = body_object(body) or {}
    return {k: data[k] for k in ("job_id", "kind", "group_id") if isinstance(data.get(k), str)}


def to_message(envelope: Envelope, queue_name: str, options: dict[str, Any] | None = None) -> dramatiq.Message[Any]:
    """The :class:`dramatiq.Message` that carries ``envelope`` on the dramatiq queue ``queue_name``."""
    return dramatiq.Message(
        queue_name=queue_name,
        actor_name=envelope.actor_name,
        args=(envelope.to_arg(),),
        kwargs={},
        options=dict(options or {}),
        message_id=envelope.message_id,
        message_timestamp=int(envelope.created_at.timestamp() * 1000),
    )


def from_message(message: dramatiq.Message[Any]) -> Envelope:
    """The envelope a message carries: its single positional argument, with ``actor`` set to the message's actor.

    Raises:
        ValueError: the message does not carry exactly one envelope dict (the broker only transports envelopes).
        pydantic.ValidationError: the dict breaks the envelope schema.
    """
    if len(message.args) != 1 or message.kwargs or not isinstance(message.args[0], dict):
        raise ValueError(
            f"actor {message.actor_name!r}: the SQS broker carries one envelope dict per message "
            "(use Envelope.new(...).to_arg() as the only argument)"
        )
    fields = dict(message.args[0])
    fields["actor"] = message.actor_name
    return Envelope.model_validate(fields)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of envelope version 1 (what ``docs/message-envelope.schema.json`` holds)."""
    schema = Envelope.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://payments-engine.dev/schemas/message-envelope-v1.json"
    schema["title"] = "payments-engine message envelope, version 1"
    return schema
