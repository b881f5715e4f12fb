"""Request bodies of the ingest, validated with pydantic.  Unknown fields are refused (a typo must not pass)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from engine.domain.money import AmountNotChargeable, UnknownCurrency, check_chargeable, currency
from engine.domain.vat import VatError, VatIdCountryMismatch, check_vat_id, normalize_country

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


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
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


class PaymentRequest(Strict):
    """``POST /v1/payments``."""

    customer: Customer
    amount: StrictInt = Field(description="Minor units of the currency (cents for EUR, yen for JPY).")
    currency: str = Field(description="ISO 4217, either case; answered in lower case.")
    payment_method: Annotated[str, Field(min_length=1, max_length=255)]
    tax_behavior: Literal["exclusive", "inclusive"] = "exclusive"
    tax_category: Literal["standard", "reduced", "super_reduced"] = "standard"
    description: str | None = Field(default=None, max_length=1000)
    metadata: dict[str, str] | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return currency(value).code
        except UnknownCurrency as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_metadata(value)

    def semantic_errors(self) -> list[tuple[str, str]]:
        """Checks across fields, as ``(dotted param, message)``: amounts Stripe cannot charge, and a VAT id
        whose prefix names another country than the customer's."""
        errors: list[tuple[str, str]] = []
        try:
            check_chargeable(self.amount, self.currency)
        except AmountNotChargeable as exc:
            errors.append(("amount", exc.message))
        if self.customer.vat_id:
            try:
                check_vat_id(self.customer.vat_id, self.customer.country)
            except VatIdCountryMismatch as exc:
                errors.append(("customer.vat_id", str(exc)))
        return errors


class ReviewDecision(Strict):
    decision: Literal["approve", "decline"]
