"""The settlement request: where a POS batch lies in S3 (what ``POST /v1/settlements`` and ``payments settle
upload`` enqueue, or an upstream system that uploaded the batch itself)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SettlementRequest(BaseModel):
    """What a settlement message carries: where the batch lies in S3 (``bucket`` defaults to the settlements
    bucket), and optionally its SHA-256 and size as the uploader saw them."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1024)
    bucket: str | None = Field(default=None, min_length=3, max_length=255)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    bytes: int | None = Field(default=None, ge=0)
