"""What the kinds' request models share: strict models, the customer, and the rules for ``metadata``.

Every job's request is validated twice with the same model: by the ingest route that accepts it and by the worker
when an upstream system enqueued the message directly (``JobKind.validate``).  Unknown fields are refused (a typo
must not pass).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.domain.pan import find_pan
from engine.domain.vat import VatError, normalize_country

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Customer(Strict):
    id: Annotated[str, Field(min_length=1, max_length=255, description="Your customer id; orders the customer's jobs.")]
    email: Annotated[str, Field(max_length=320)]
    country: Annotated[str, Field(description="ISO 3166 alpha-2 (GR or EL for Greece).")]
    vat_id: str | None = Field(default=None, max_length=32)
    type: Literal["consumer", "business"] = "consumer"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("not an e-mail address")
        return value

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        try:
            return normalize_country(value)
        except VatError as exc:
            raise ValueError(str(exc)) from exc


def check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    """``value`` when it is valid Stripe metadata the engine may pass on; :class:`ValueError` otherwise (too many
    keys, a key or value too long, ``job_id``, which the engine sets itself, or what looks like a card number)."""
    if value is None:
        return None
    if find_pan(value) is not None:
        # Stripe metadata is stored and shown in plain text: a card number must never get there.
        raise ValueError("holds what looks like a card number")
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
    for key, item in value.items():
        if key == "job_id":
            raise ValueError("metadata.job_id is reserved for the engine")
        if not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise ValueError(f"keys are 1 to {MAX_METADATA_KEY_LENGTH} characters")
        if len(item) > MAX_METADATA_VALUE_LENGTH:
            raise ValueError(f"values are at most {MAX_METADATA_VALUE_LENGTH} characters")
    return value
