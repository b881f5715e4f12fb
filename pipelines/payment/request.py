"""The payment request (``POST /v1/payments`` and upstream-enqueued payment messages)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, StrictBool, StrictInt, field_validator

from engine.domain.money import AmountNotChargeable, UnknownCurrency, check_chargeable, currency
from engine.domain.vat import VatIdCountryMismatch, check_vat_id
from engine.jobs.request import Customer, Strict, check_metadata

#: The example of the OpenAPI document (a payment the local stack accepts and charges).
PAYMENT_EXAMPLE: dict[str, JsonValue] = {
    "customer": {"id": "cus_42", "email": "anna@example.ie", "country": "IE"},
    "amount": 1000,
    "currency": "EUR",
    "payment_method": "pm_card_visa",
    "description": "Order 1001",
}


class PaymentRequest(Strict):
    """``POST /v1/payments``."""

    model_config = ConfigDict(json_schema_extra={"examples": [PAYMENT_EXAMPLE]})

    customer: Customer
    amount: StrictInt = Field(description="Minor units of the currency (cents for EUR, yen for JPY).")
    currency: str = Field(description="ISO 4217, either case; answered in lower case.")
    payment_method: Annotated[str, Field(min_length=1, max_length=255)]
    tax_behavior: Literal["exclusive", "inclusive"] = "exclusive"
    tax_category: Literal["standard", "reduced", "super_reduced"] = "standard"
    description: str | None = Field(default=None, max_length=1000)
    metadata: dict[str, str] | None = None
    invoice: StrictBool = Field(
        default=False,
        description="Issue an invoice once the payment is captured: numbered in the seller's gap-free series shared "
        "with subscriptions, PDF in the invoices bucket; the job shows invoice{number, s3_key}.",
    )

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
        return check_metadata(value)

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
