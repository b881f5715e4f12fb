"""Jobs: what the ingest accepts and workers carry to a terminal status.  Free of SQLAlchemy and boto3.

A job moves ``accepted`` → ``processing`` → one of the terminal statuses.  ``stage`` is the last completed
stage (the recovery point); ``stage_results`` keeps what each completed stage produced so a redelivered or
replayed job resumes after it instead of redoing it.  ``public`` holds the kind-specific fields of the API view.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from engine.domain.merchant import DEFAULT_MERCHANT
from engine.domain.timestamps import iso_utc
from engine.jobs.output import StageNotRun, StageOutput

#: Every status a job can have, in lifecycle order (``engine/db/tables.py`` and migration 0001 list the same).
STATUSES = ("accepted", "processing", "succeeded", "failed", "requires_action", "in_review", "dead_lettered")
#: The pipeline has stopped: a delivered message has nothing left to do, and the job announced ``job.{status}``.
SETTLED = frozenset({"succeeded", "failed", "in_review", "requires_action"})
#: No worker moves the job any more: settled, or dead-lettered.
TERMINAL = SETTLED | {"dead_lettered"}
#: Terminal statuses that may still move on (webhook, review decision, replay).
REOPENABLE = frozenset({"requires_action", "in_review", "dead_lettered"})
#: Outcomes that never change: the money moved, or never will.
FINAL = frozenset({"succeeded", "failed"})

OutputT = TypeVar("OutputT", bound=StageOutput)


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
    #: The merchant (tenant) owning the job: the API shows it only to that merchant's tokens.
    merchant_id: str = DEFAULT_MERCHANT
    #: The token subject whose request created the job (None: made by the engine, or before migration 0015).
    created_by: str | None = None
    stage_results: dict[str, Any] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    attempts: int = 0
    enqueue_generation: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def accepted(
        cls,
        *,
        kind: str,
        queue: str,
        idempotency_scope: str,
        group_id: str,
        request: dict[str, Any],
        customer_id: str | None = None,
        correlation_id: str | None = None,
        public: dict[str, Any] | None = None,
        job_id: str | None = None,
        merchant_id: str = DEFAULT_MERCHANT,
        created_by: str | None = None,
    ) -> Job:
        """A new job, ``accepted`` and before its first stage, to be inserted (``job_id``: a fresh one if None).

        ``queue`` is the SQS name of the kind's queue without prefix (``payments.fifo``).
        """
        return cls(
            id=job_id or new_job_id(),
            kind=kind,
            status="accepted",
            stage=None,
            idempotency_scope=idempotency_scope,
            queue=queue,
            group_id=group_id,
            request=request,
            customer_id=customer_id,
            correlation_id=correlation_id,
            merchant_id=merchant_id,
            created_by=created_by,
            public=public or {},
        )

    def output(self, kind: type[OutputT]) -> OutputT:
        """The output of the completed stage ``kind.STAGE``, typed.

        Raises :class:`engine.jobs.output.StageNotRun` when that stage has not completed or produced nothing, and
        :class:`engine.jobs.output.OutputMismatch` when what is stored does not fit ``kind``.
        """
        found = self.output_or_none(kind)
        if found is None:
            raise StageNotRun(f"job {self.id} has no output of stage {kind.STAGE!r}: the stage has not run")
        return found

    def output_or_none(self, kind: type[OutputT]) -> OutputT | None:
        """As :meth:`output`, but None when the stage has not completed or produced nothing."""
        data = self.stage_results.get(kind.STAGE)
        return kind.from_json(data) if data else None

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

    def view_for(self, sub: str) -> dict[str, Any]:
        """The API representation shown to the token subject ``sub`` (of the job's merchant): :meth:`view` without
        the PaymentIntent's ``client_secret`` unless ``sub`` created the job (the secret confirms the payment from
        the customer's browser; only the integration that made the job hands it on)."""
        out = self.view()
        stripe = out.get("stripe")
        if isinstance(stripe, dict) and "client_secret" in stripe and sub != self.created_by:
            out["stripe"] = {k: v for k, v in stripe.items() if k != "client_secret"}
        return out
