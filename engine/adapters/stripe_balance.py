"""Stripe's balance as the engine reads it: the fee of a charge, a payout and its balance transactions.

Reads only (idempotent, safe to repeat after a crash), through :meth:`StripeGateway.call` so they feed the
circuit breaker and the metrics like every other Stripe request.  The fee model of the sandbox is documented in
docs/stripe-sandbox.md ("Fees"); on Stripe the figures come from the same fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.adapters.stripe_gateway import StripeGateway

__all__ = ["Fee", "charge_fee", "payout_transactions", "payouts"]


@dataclass(frozen=True)
class Fee:
    """Stripe's fee on one charge, from its balance transaction: ``amount`` minor units of ``currency`` (the
    balance's currency, which on Stripe may differ from the charge's), and the transaction's id."""

    amount: int
    currency: str
    balance_transaction: str


def charge_fee(gw: StripeGateway, job_id: str, *, charge: str | None, payment_intent: str | None) -> Fee | None:
    """The fee of ``charge`` (or of ``payment_intent``'s latest charge when the charge id is not known): the balance
    transaction this process's create-and-confirm saw expanded, else one GET with it expanded.  None when the charge
    has no balance transaction yet (not captured).  Raises the SDK's errors (the caller classifies them)."""
    seen = gw.seen_balance_transaction(charge) if charge else None
    if seen is not None:
        # The create-and-confirm of this delivery expanded it (StripeGateway.create_and_confirm): no GET.
        return Fee(int(seen.fee), str(seen.currency).lower(), str(seen.id))
    if charge:
        obj = gw.call(job_id, gw.client.v1.charges.retrieve, charge, params={"expand": ["balance_transaction"]})
    elif payment_intent:
        intent = gw.call(
            job_id,
            gw.client.v1.payment_intents.retrieve,
            payment_intent,
            params={"expand": ["latest_charge.balance_transaction"]},
        )
        obj = intent.latest_charge
    else:
        return None
    txn = getattr(obj, "balance_transaction", None) if obj is not None else None
    if txn is None or isinstance(txn, str):
        return None
    return Fee(int(txn.fee), str(txn.currency).lower(), str(txn.id))


def payouts(gw: StripeGateway) -> Iterator[Any]:
    """Every payout, newest first (all pages)."""
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = gw.call("reconcile", gw.client.v1.payouts.list, params=params)
        yield from page.data
        if not page.has_more or not page.data:
            return
        params["starting_after"] = page.data[-1].id


def payout_transactions(gw: StripeGateway, payout: str) -> list[Any]:
    """The balance transactions ``payout`` paid out (its own ``type: payout`` transaction included), all pages."""
    params: dict[str, Any] = {"limit": 100, "payout": payout}
    found: list[Any] = []
    while True:
        page = gw.call("reconcile", gw.client.v1.balance_transactions.list, params=params)
        found.extend(page.data)
        if not page.has_more or not page.data:
            return found
        params["starting_after"] = page.data[-1].id
