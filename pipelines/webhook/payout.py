"""Payouts: ``payout.paid`` and ``payout.failed``.

Stripe pays the balance out to the merchant's bank.  ``payout.paid`` books ``payout:{po}:paid`` (kind
``adjustment``): Dr ``bank:{currency}`` / Cr ``stripe_clearing`` the payout's amount, so that ``stripe_clearing``
returns to zero once everything Stripe holds was paid out.  ``payout.failed`` after a paid payout (the bank sent it
back) books the reversal ``payout:{po}:failed``: Dr ``stripe_clearing`` / Cr ``bank:{currency}``; a payout that
failed before it was paid moved nothing and books nothing.  Idempotent through the effect keys; both are read from
Stripe's current payout object under a lock per payout, so an out-of-order ``paid`` after ``failed`` books
nothing and a ``failed`` racing a ``paid`` sees its booking.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.db.ledger import find, record
from engine.domain.ledger import STRIPE_CLEARING, LedgerTransaction, credit, debit
from pipelines.webhook.context import HandlerContext

#: The merchant's bank account in the ledger, per currency: what Stripe paid out and the bank received.
BANK = "bank"


def bank(currency: str) -> str:
    """``bank:{currency}`` (lower case)."""
    return f"{BANK}:{currency.lower()}"


def payout_paid(payout_id: str, currency: str, amount: int) -> LedgerTransaction:
    """Stripe paid ``amount`` out to the bank."""
    return LedgerTransaction(
        effect_key=f"payout:{payout_id}:paid",
        kind="adjustment",
        postings=(debit(bank(currency), currency, amount), credit(STRIPE_CLEARING, currency, amount)),
        description=f"payout {payout_id} paid",
        metadata={"payout": payout_id},
    )


def payout_returned(payout_id: str, currency: str, amount: int) -> LedgerTransaction:
    """A paid payout that failed afterwards: the bank sent ``amount`` back to the Stripe balance."""
    return LedgerTransaction(
        effect_key=f"payout:{payout_id}:failed",
        kind="adjustment",
        postings=(debit(STRIPE_CLEARING, currency, amount), credit(bank(currency), currency, amount)),
        description=f"payout {payout_id} failed after it was paid",
        metadata={"payout": payout_id},
    )


def handle(ctx: HandlerContext, event: dict[str, Any]) -> dict[str, Any]:
    """Book the payout's state as Stripe reports it now (module docstring); report what was done."""
    payout_id = str(event["data"]["object"]["id"])
    with ctx.db.begin() as conn:
        # One payout's events are handled one at a time (two copies, or paid racing failed): each reads Stripe's
        # state and the bookings after the other committed.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"payout:{payout_id}"})
        # Stripe's current object: a paid event delivered after the failure must not book a payment out.
        current = ctx.stripe.call(ctx.job_id, ctx.stripe.client.v1.payouts.retrieve, payout_id)
        status = str(current.status)
        amount, currency = int(current.amount), str(current.currency).lower()
        paid_id = find(conn, f"payout:{payout_id}:paid")
        if status == "paid":
            ledger_id = record(conn, payout_paid(payout_id, currency, amount))
            return {"outcome": "booked", "payout": payout_id, "status": status, "ledger_transaction": ledger_id}
        if status == "failed" and paid_id is not None:
            ledger_id = record(conn, payout_returned(payout_id, currency, amount))
            return {"outcome": "reversed", "payout": payout_id, "status": status, "ledger_transaction": ledger_id}
    return {"outcome": "nothing_to_book", "payout": payout_id, "status": status}
