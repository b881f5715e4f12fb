"""Request bodies of the ingest's own routes (the kinds' request models live in their packages)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from engine.jobs.request import Strict


class ReviewDecision(Strict):
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

    error: ErrorDetail


class HealthVerdict(BaseModel):
    """The public health verdict (each dependency's state is on the internal port)."""

    status: Literal["ok", "degraded"]
