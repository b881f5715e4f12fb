"""Jobs: what the ingest accepts and workers carry to a terminal status.  Free of SQLAlchemy and boto3.

A job moves ``accepted`` → ``processing`` → one of the terminal statuses.  ``stage`` is the last completed
stage (the recovery point); ``stage_results`` keeps what each completed stage produced so a redelivered or
replayed job resumes after it instead of redoing it.  ``public`` holds the kind-specific fields of the API view.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.domain.timestamps import iso_utc

KINDS = ("payment", "refund", "subscription", "settlement", "webhook")
TERMINAL = frozenset({"succeeded", "failed", "requires_action", "in_review", "dead_lettered"})
#: Terminal statuses that may still move on (webhook, review decision, replay).
REOPENABLE = frozenset({"requires_action", "in_review", "dead_lettered"})


def new_job_id() -> str:
    """A fresh job id: ``job_`` and 24 random base-32 characters (unguessable, URL-safe)."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "job_" + "".join(secrets.choice(alphabet) for _ in range(24))


@dataclass
class Job:
    """One job as stored."""

    id: str
    kind: str
    status: str
    stage: str | None
    idempotency_scope: str
    queue: str
    group_id: str
    request: dict[str, Any]
    customer_id: str | None = None
    correlation_id: str | None = None
    stage_results: dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    attempts: int = 0
    enqueue_generation: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def view(self) -> dict[str, Any]:
        """The API representation (``GET /v1/jobs/{id}``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "object": "job",
            "kind": self.kind,
            "status": self.status,
            "stage": self.stage,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
        }
        if self.error:
            out["error"] = self.error
        out.update(self.public)
        return out
