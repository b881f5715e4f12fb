"""Request bodies of the ingest's own routes (the kinds' request models live in their packages)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from engine.jobs.request import Strict


class ReviewDecision(Strict):
    """``POST /v1/jobs/{id}/review``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"decision": "approve"}]})

    decision: Literal["approve", "decline"]


class ErrorDetail(BaseModel):
    """What went wrong (``docs/api.md``, "Errors")."""

    type: Literal[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "idempotency_error",
        "rate_limit_error",
        "api_error",
    ]
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`, `idempotency_key_reused`.")
    message: str = Field(description="For a human; may change.")
    param: str | None = Field(
        default=None, description="The offending field as a dotted path into the body, or the header's name."
    )


class ErrorEnvelope(BaseModel):
    """Every error the API answers: ``{"error": {"type", "code", "message", "param"?}}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "validation_error",
                        "message": "amount: Input should be greater than 0",
                        "param": "amount",
                    }
                }
            ]
        }
    )

    error: ErrorDetail


class HealthVerdict(BaseModel):
    """The public health verdict (each dependency's state is on the internal port)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok", "degraded"]


class Liveness(BaseModel):
    """``GET /health/live``: the process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


_JOB_EXAMPLE: dict[str, JsonValue] = {
    "id": "job_01JD3X9Q4M6Z8K2V7N5R1T0B3C",
    "object": "job",
    "kind": "payment",
    "status": "succeeded",
    "stage": "notify",
    "created_at": "2026-11-30T10:15:00.000Z",
    "updated_at": "2026-11-30T10:15:00.000Z",
    "customer": "cus_1",
    "amount": 1000,
    "currency": "eur",
}


def job_example(**fields: JsonValue) -> dict[str, JsonValue]:
    """The document's example job with ``fields`` changed (another kind, status or stage)."""
    return {**_JOB_EXAMPLE, **fields}


class JobStripe(BaseModel):
    """The Stripe objects of a payment job."""

    model_config = ConfigDict(extra="allow")

    payment_intent: str | None = Field(default=None, description="The PaymentIntent's id.")
    client_secret: str | None = Field(
        default=None,
        description="The PaymentIntent's client secret, to confirm it in the customer's browser.  Shown only to "
        "the token subject that created the job; absent for every other caller, of any role.",
    )


class Job(BaseModel):
    """A job (``engine/jobs/job.py``): these fields on every kind, and the kind's own fields beside them
    (``docs/api.md``, "Objects")."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_JOB_EXAMPLE]})

    id: str
    object: Literal["job"]
    kind: str
    status: str
    stage: str | None
    created_at: str = Field(description="ISO 8601 in UTC, ending in Z.")
    updated_at: str = Field(description="ISO 8601 in UTC, ending in Z.")
    error: dict[str, Any] | None = Field(default=None, description="Why the job failed, when it did.")
    stripe: JobStripe | None = Field(default=None, description="A payment's PaymentIntent, once created.")


class JobList(BaseModel):
    """A page of jobs, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "object": "list",
                    "url": "/v1/jobs",
                    "data": [_JOB_EXAMPLE],
                    "has_more": True,
                    "next_cursor": "eyJ0IjoiMjAyNi0xMS0zMCJ9",
                }
            ]
        }
    )

    object: Literal["list"]
    url: str
    data: list[Job]
    has_more: bool
    next_cursor: str | None
