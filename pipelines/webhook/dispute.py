"""Disputes: ``charge.dispute.created`` and ``charge.dispute.closed``.

Stripe withdraws the disputed amount (and its dispute fee) from the balance while the dispute is open; the engine
books, each once under the payment's row lock (kind ``adjustment``; docs/webhooks.md, docs/ledger.md):

* created — ``dispute:{dp}:created``: Dr ``receivable:{customer}`` / Cr ``stripe_clearing`` the amount (now claimed
  back from the customer's bank, to be won or lost); and ``dispute:{dp}:fee`` (kind ``fee``): Dr ``fees`` / Cr
  ``stripe_clearing`` the dispute fee, read from the dispute's balance transactions (Stripe keeps it either way);
* closed, won — ``dispute:{dp}:won``: Dr ``stripe_clearing`` / Cr ``receivable:{customer}`` (Stripe reinstated it);
* closed, lost — ``dispute:{dp}:lost``: the receivable is written off: Dr ``dispute_losses`` the net part, Dr
  ``vat_payable:{CC}`` the VAT part (the consideration was never received, so the VAT declared on it is reduced,
  in proportion to the payment's VAT as a refund's is), Cr ``receivable:{customer}`` the amount.

A closed event books the opening too when it arrives first (events of one dispute share a message group, but the
created event may have been lost): the effect keys keep every booking single.  A dispute of a charge the engine
does not know is recorded (the webhook job's result says ``unmatched``), answered 200 like every accepted event, and
counted in ``payments_disputes_total{event, outcome="unmatched"}``.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.domain.ledger import (
    DISPUTE_LOSSES,
    FEES,
    STRIPE_CLEARING,
    LedgerTransaction,
    credit,
    debit,
    receivable,
    vat_payable,
)
from engine.jobs.job import Job
from engine.runtime import metrics
from pipelines.webhook.context import CHARGING_KINDS, HandlerContext, metadata_job_id, payment_job_for

log = logging.getLogger(__name__)


def dispute_opened(effect_id: str, customer: str, currency: str, amount: int, payment_id: str) -> LedgerTransaction:
    """The ledger transaction of a dispute opened for ``amount`` minor units.  Raises as the ledger builders do."""
    return LedgerTransaction(
        effect_key=f"dispute:{effect_id}:created",
        kind="adjustment",
        postings=(debit(receivable(customer), currency, amount), credit(STRIPE_CLEARING, currency, amount)),
        job_id=payment_id,
        description=f"dispute {effect_id} opened on payment {payment_id}",
        metadata={"customer": customer, "payment": payment_id, "dispute": effect_id},
    )


def dispute_fee(effect_id: str, currency: str, fee: int, payment_id: str) -> LedgerTransaction:
    """Stripe's dispute fee (``fee`` minor units of ``currency``) on dispute ``effect_id``."""
    return LedgerTransaction(
        effect_key=f"dispute:{effect_id}:fee",
        kind="fee",
        postings=(debit(FEES, currency, fee), credit(STRIPE_CLEARING, currency, fee)),
        job_id=payment_id,
        description=f"dispute fee of {effect_id} on payment {payment_id}",
        metadata={"payment": payment_id, "dispute": effect_id},
    )


def dispute_won(effect_id: str, customer: str, currency: str, amount: int, payment_id: str) -> LedgerTransaction:
    """The hold of a won dispute reversed: Stripe reinstated ``amount``."""
    return LedgerTransaction(
        effect_key=f"dispute:{effect_id}:won",
        kind="adjustment",
        postings=(debit(STRIPE_CLEARING, currency, amount), credit(receivable(customer), currency, amount)),
        job_id=payment_id,
        description=f"dispute {effect_id} won on payment {payment_id}",
        metadata={"customer": customer, "payment": payment_id, "dispute": effect_id},
    )


def dispute_lost(
    effect_id: str, customer: str, currency: str, amount: int, vat: int, vat_country: str, payment_id: str
) -> LedgerTransaction:
    """A lost dispute: ``amount`` written off the receivable, ``vat`` of it reducing the VAT owed to
    ``vat_country``, the rest a loss.  Raises as the ledger builders do (``0 <= vat <= amount``)."""
    if not 0 <= vat <= amount:
        raise ValueError(f"dispute {effect_id}: VAT part {vat} outside 0..{amount}")
    postings = [credit(receivable(customer), currency, amount)]
    if amount - vat:
        postings.append(debit(DISPUTE_LOSSES, currency, amount - vat))
    if vat:
        postings.append(debit(vat_payable(vat_country), currency, vat))
    return LedgerTransaction(
        effect_key=f"dispute:{effect_id}:lost",
        kind="adjustment",
        postings=tuple(postings),
        job_id=payment_id,
        description=f"dispute {effect_id} lost on payment {payment_id}",
        metadata={"customer": customer, "payment": payment_id, "dispute": effect_id, "net": amount - vat, "vat": vat},
    )


def vat_share(amount: int, total: int, vat: int) -> int:
    """The VAT in ``amount`` of a payment of ``total`` holding ``vat``: proportional, half up, never above
    ``amount`` or ``vat``."""
    if total <= 0 or amount <= 0:
        return 0
    return min((2 * vat * amount + total) // (2 * total), vat, amount)


def _fee_of(dispute: dict[str, Any]) -> tuple[int, str] | None:
    """The dispute fee from the dispute's balance transactions (Stripe lists them on the object)."""
    fee, cur = 0, None
    for txn in dispute.get("balance_transactions") or []:
        if isinstance(txn, dict) and int(txn.get("fee") or 0) > 0:
            fee += int(txn["fee"])
            cur = str(txn.get("currency") or dispute["currency"]).lower()
    return (fee, cur) if fee and cur else None


def handle(ctx: HandlerContext, event: dict[str, Any]) -> dict[str, Any]:
    """Book the dispute event (module docstring) and note it on its payment job; report what was done."""
    dispute = event["data"]["object"]
    kind = str(event.get("type"))
    intent = dispute.get("payment_intent")
    if not intent and dispute.get("charge"):
        intent = ctx.stripe.client.v1.charges.retrieve(str(dispute["charge"])).payment_intent
    payment_id = payment_job_for(ctx.db, job_id=metadata_job_id(dispute), payment_intent=intent, kinds=CHARGING_KINDS)
    if payment_id is None:
        metrics.DISPUTES.labels(kind, "unmatched").inc()
        log.warning(
            "dispute %s (%s) of charge %s: no payment job knows it", dispute.get("id"), kind, dispute.get("charge")
        )
        return {
            "outcome": "unmatched",
            "reason": "no payment job for this dispute's charge",
            "dispute": dispute.get("id"),
            "charge": dispute.get("charge"),
            "amount": dispute.get("amount"),
            "currency": dispute.get("currency"),
        }
    note = {
        "id": dispute["id"],
        "amount": int(dispute["amount"]),
        "currency": str(dispute["currency"]).lower(),
        "reason": dispute.get("reason"),
        "status": dispute.get("status"),
    }
    closed = kind == "charge.dispute.closed" and note["status"] in ("won", "lost")
    with ctx.db.begin() as conn:
        payment = job_repo.get(conn, payment_id, for_update=True)
        customer = (payment.request.get("customer") or {}).get("id") or payment.customer_id or "unknown"
        ids = {
            "ledger_transaction": record(
                conn, dispute_opened(note["id"], customer, note["currency"], note["amount"], payment_id)
            )
        }
        fee = _fee_of(dispute)
        if fee is not None:
            ids["fee_transaction"] = record(conn, dispute_fee(note["id"], fee[1], fee[0], payment_id))
            note["fee"] = fee[0]
        if closed:
            ids["closing_transaction"] = record(conn, _closing(note, customer, payment, payment_id))
        job_repo.merge_result(conn, payment_id, {"dispute": {**note, **ids}}, touch=True)
    metrics.DISPUTES.labels(kind, "booked").inc()
    return {"outcome": "booked", "payment": payment_id, "dispute": note["id"], "status": note["status"], **ids}


def _closing(note: dict[str, Any], customer: str, payment: Job, payment_id: str) -> LedgerTransaction:
    if note["status"] == "won":
        return dispute_won(note["id"], customer, note["currency"], note["amount"], payment_id)
    amounts = payment.stage_results.get("vat") or {}
    vat = 0
    if str(amounts.get("currency", "")).lower() == note["currency"]:
        vat = vat_share(note["amount"], int(amounts.get("total") or 0), int(amounts.get("vat") or 0))
    # The VAT account is only named when there is VAT to reduce (a reverse-charge sale has none).
    country = str(amounts.get("country") or "")
    return dispute_lost(note["id"], customer, note["currency"], note["amount"], vat, country, payment_id)


__all__ = [
    "DISPUTE_LOSSES",
    "dispute_fee",
    "dispute_lost",
    "dispute_opened",
    "dispute_won",
    "handle",
    "vat_share",
]
