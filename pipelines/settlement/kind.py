"""How the engine handles jobs of kind ``settlement``: request validation and the pipeline runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.errors import PoisonError
from engine.jobs.pipeline import PipelineRunner

if TYPE_CHECKING:
    from engine.runtime.services import Services


class SettlementRequest(BaseModel):
    """What a settlement message carries: where the batch lies in S3 (``bucket`` defaults to the settlements
    bucket), and optionally its SHA-256 and size as the uploader saw them."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1024)
    bucket: str | None = Field(default=None, min_length=3, max_length=255)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    bytes: int | None = Field(default=None, ge=0)


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued settlement, normalised; :class:`PoisonError` when invalid."""
    try:
        request = SettlementRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PoisonError(f"invalid settlement request: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    return request.model_dump(mode="json", exclude_none=True)


def bucket_name(services_or_settings: Any) -> str:
    """The settlements bucket with ``PAYMENTS_QUEUE_PREFIX`` in front (as :func:`engine.adapters.s3.bucket_names`)."""
    s = getattr(services_or_settings, "settings", services_or_settings)
    return f"{s.queue_prefix}{s.s3.bucket_settlements}"


def runner(services: Services) -> PipelineRunner:
    """The settlement pipeline wired to this process's database and S3."""
    from pipelines.settlement import settlement_pipeline

    c = services.c
    return PipelineRunner(c.db, settlement_pipeline(c.db, c.s3, bucket_name(c), c.settings.settlement.fee_bps))
