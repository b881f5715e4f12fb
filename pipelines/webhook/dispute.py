"""``charge.dispute.created``: a customer disputed a payment.

Stripe withdraws the disputed amount from the balance while the dispute is open, so the engine books it once
(effect key ``dispute:{dispute id}:created``, kind ``adjustment``): debit ``receivable:{customer}`` (the money is
now claimed back from the customer's bank, to be won or lost), credit ``stripe_clearing``.  The payment job gets a
``dispute`` note in its view.  Both commit together under the payment's row lock.
"""

from __future__ import annotations

from typing import Any

from engine.db import jobs as job_repo
from engine.db.ledger import record
from engine.domain.ledger import STRIPE_CLEARING, LedgerTransaction, credit, debit, receivable
from pipelines.webhook.context import HandlerContext, metadata_job_id, payment_job_for


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


def handle(ctx: HandlerContext, event: dict[str, Any]) -> dict[str, Any]:
    """Note the dispute on its payment job and book it; report what was done."""
    dispute = event["data"]["object"]
    intent = dispute.get("payment_intent")
    if not intent and dispute.get("charge"):
        intent = ctx.stripe.client.v1.charges.retrieve(str(dispute["charge"])).payment_intent
    payment_id = payment_job_for(ctx.db, job_id=metadata_job_id(dispute), payment_intent=intent)
    if payment_id is None:
        return {"outcome": "ignored", "reason": "no payment job for this dispute"}
    note = {
        "id": dispute["id"],
        "amount": int(dispute["amount"]),
        "currency": str(dispute["currency"]).lower(),
        "reason": dispute.get("reason"),
        "status": dispute.get("status"),
    }
    with ctx.db.begin() as conn:
        payment = job_repo.get(conn, payment_id, for_update=True)
        customer = (payment.request.get("customer") or {}).get("id") or payment.customer_id or "unknown"
        ledger_id = record(conn, dispute_opened(note["id"], customer, note["currency"], note["amount"], payment_id))
        job_repo.merge_result(conn, payment_id, {"dispute": {**note, "ledger_transaction": ledger_id}}, touch=True)
    return {"outcome": "booked", "payment": payment_id, "dispute": note["id"], "ledger_transaction": ledger_id}
