"""The settlement request: where a POS batch lies in S3 (what ``POST /v1/settlements`` and ``payments settle
upload`` enqueue, or an upstream system that uploaded the batch itself)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Where batches lie: a settlement message may only name an object under this prefix of the settlements bucket
#: (issue 14 item 12; the reports and anything else in that bucket, or any other bucket, are not the worker's to read).
BATCH_PREFIX = "batches/"
# Printable ASCII without spaces, backslashes or control characters; ".." segments are refused separately.
_KEY = re.compile(r"[!-~]+")


class SettlementRequest(BaseModel):
    """What a settlement message carries: where the batch lies in S3, and optionally its SHA-256 and size as the
    uploader saw them.  ``key`` must lie under ``batches/`` (:data:`BATCH_PREFIX`); ``bucket``, when given, must be
    the settlements bucket (checked by the ingest stage, which knows its name)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1024)
    bucket: str | None = Field(default=None, min_length=3, max_length=255)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    bytes: int | None = Field(default=None, ge=0)

    @field_validator("key")
    @classmethod
    def _under_batches(cls, value: str) -> str:
        if not value.startswith(BATCH_PREFIX) or not _KEY.fullmatch(value) or "\\" in value:
            raise ValueError(f"the batch must lie under {BATCH_PREFIX} of the settlements bucket")
        if any(part in ("", ".", "..") for part in value[len(BATCH_PREFIX) :].split("/")):
            raise ValueError("the key has an empty, '.' or '..' segment")
        return value
