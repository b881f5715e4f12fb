"""The invoice document (``invoices.document``): what the PDF shows, fixed when the invoice is numbered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from config.settings import Settings

#: The customer fields an invoice shows.
CUSTOMER_FIELDS = ("id", "email", "country", "vat_id", "type")


def seller_key(settings: Settings) -> str:
    """The seller's key for invoice numbering: its VAT id, else its country.  Payments' and subscriptions'
    invoices share it, so they share one gap-free series per year."""
    return settings.seller.vat_id or settings.seller.country


def build(
    settings: Settings,
    customer: Mapping[str, Any],
    *,
    currency: str,
    lines: Iterable[Mapping[str, Any]],
    net: int,
    vat: int,
    vat_country: str,
    vat_rate: str,
    vat_scheme: str,
    notes: Iterable[str] = (),
    subscription: str | None = None,
    payment_intent: str | None = None,
    credit_applied: int = 0,
) -> dict[str, Any]:
    """The document of an invoice of ``net + vat`` (minor units of ``currency``) to ``customer``; ``lines`` are
    ``{"description", "amount"}`` (net).  :func:`engine.invoices.numbering.issue` adds the number and date.

    ``credit_applied``: how much of the total the customer's booked credit paid (the rest was charged); shown under
    the total.
    """
    extra: dict[str, Any] = {"credit_applied": credit_applied} if credit_applied else {}
    return {
        **extra,
        "seller": {"country": settings.seller.country, "vat_id": settings.seller.vat_id},
        "customer": {k: customer.get(k) for k in CUSTOMER_FIELDS},
        "currency": currency,
        "lines": [dict(line) for line in lines],
        "net": net,
        "vat_amount": vat,
        "total": net + vat,
        "vat": {"country": vat_country, "rate": vat_rate, "scheme": vat_scheme},
        "notes": list(notes),
        "subscription": subscription,
        "payment_intent": payment_intent,
    }
