"""The sandbox's balance: balance transactions with Stripe's fees, disputes and payouts.

Every movement of the account's balance is a balance transaction (``txn_…``), as on Stripe: a captured charge
(``type: charge``, ``fee`` = Stripe's processing fee, ``net = amount − fee``), a refund (``type: refund``, negative,
no fee), a dispute's withdrawal (``type: adjustment``, ``reporting_category: dispute``, the disputed amount
negative plus the dispute fee) and its reinstatement when the dispute is won (``dispute_reversal``), a payout
(``type: payout``, negative) and a failed payout's return (``payout_failure``).

Fee model (docs/stripe-sandbox.md, "Fees"): Stripe's standard European pricing for card payments — **1.5 % + 0.25**
for cards issued in the EEA, 2.5 % + 0.25 for UK cards, 3.25 % + 0.25 for every other card; the percentage rounded
half up to the minor unit, the fixed part being 0.25 of the charge currency's major unit (EUR 0.25; nothing for
zero-decimal currencies).  A dispute costs a flat fee of 20 major units (EUR 20.00), kept by Stripe whatever the
outcome.  Balance transactions are in the charge's currency (the sandbox keeps one balance per currency and never
converts) and available at once.

A payout (``POST /_sim/payouts``) pays out, per currency, every balance transaction not yet paid out; listing
``GET /v1/balance_transactions?payout=po_…`` gives them (and the payout's own transaction), so a payout always
equals the sum of its transactions' ``net``.  A failed payout returns its amount to the balance and releases its
transactions for the next payout.
"""

from __future__ import annotations

from typing import Any

from sandbox.stripe_sim import currencies
from sandbox.stripe_sim.api_base import ApiBase, ApiRequest
from sandbox.stripe_sim.errors import invalid_request, state_error
from sandbox.stripe_sim.objects import new_id
from sandbox.stripe_sim.params import COMMON, check_params, str_param
from sandbox.stripe_sim.store import Store

__all__ = ["EEA", "BalanceEndpoints", "book_charge", "book_refund", "dispute_fee", "processing_fee"]

#: The EEA: the EU member states plus Iceland, Liechtenstein and Norway (ISO 3166 alpha-2).
EEA = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    ]
)
#: Basis points of the amount: (EEA cards, UK cards, every other card).
EEA_BPS, UK_BPS, INTERNATIONAL_BPS = 150, 250, 325
DISPUTE_FEE_MAJOR = 20


def _fixed(currency: str) -> int:
    """0.25 of the currency's major unit in minor units (half up; 0 for zero-decimal currencies)."""
    exp = currencies.exponent(currency)
    return (25 * 10**exp + 50) // 100


def processing_fee(amount: int, currency: str, card_country: str | None) -> int:
    """Stripe's fee for a card charge of ``amount`` minor units, by the card's issuing country (module docstring)."""
    country = (card_country or "").upper()
    bps = EEA_BPS if country in EEA else UK_BPS if country == "GB" else INTERNATIONAL_BPS
    return (amount * bps + 5000) // 10000 + _fixed(currency)


def dispute_fee(currency: str) -> int:
    """The flat dispute fee in minor units of ``currency``."""
    return DISPUTE_FEE_MAJOR * 10 ** currencies.exponent(currency)


PAYOUT_FAILURES = ("account_closed", "account_frozen", "bank_account_restricted", "could_not_process")


class BalanceEndpoints(ApiBase):
    """Balance transactions, disputes and payouts (``/v1`` reads, ``/_sim`` actions)."""

    # -- balance transactions --------------------------------------------------------------------------------
    def _balance_txn(self, amount: int, currency: str, kind: str, source: str, **kw: Any) -> dict[str, Any]:
        return new_balance_txn(self.store, self._now(), amount, currency, kind, source, **kw)

    def retrieve_balance_transaction(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        return self._get("balance_transaction", id)

    def list_balance_transactions(self, req: ApiRequest) -> dict[str, Any]:
        payout = str_param(req.params, "payout")
        kind = str_param(req.params, "type")
        source = str_param(req.params, "source")
        currency = str_param(req.params, "currency")

        def keep(t: dict[str, Any]) -> bool:
            return (
                (
                    payout is None
                    or t["_sim"].get("payout") == payout
                    or (t["type"] == "payout" and t["source"] == payout)
                )
                and (kind is None or t["type"] == kind)
                and (source is None or t["source"] == source)
                and (currency is None or t["currency"] == currency.lower())
            )

        return self._list(
            "balance_transaction", req, "/v1/balance_transactions", keep, ["payout", "type", "source", "currency"]
        )

    # -- disputes ----------------------------------------------------------------------------------------------
    def open_dispute(self, charge_id: str, amount: int | None, reason: str) -> dict[str, Any]:
        """``POST /_sim/charges/{id}/dispute``: the cardholder disputes a captured charge.  Stripe withdraws the
        disputed amount and the dispute fee (one balance transaction) and sends ``charge.dispute.created`` (and
        ``charge.dispute.funds_withdrawn``)."""
        charge = self._get("charge", charge_id, label="charge")
        if not charge["captured"]:
            raise state_error(
                f"Charge {charge_id} was not captured and cannot be disputed.", code="charge_not_disputable"
            )
        if charge["disputed"]:
            raise state_error(f"Charge {charge_id} is already disputed.", code="charge_disputed")
        disputable = charge["amount_captured"] - charge["amount_refunded"]
        amount = disputable if amount is None else amount
        if not 1 <= amount <= disputable:
            raise invalid_request(f"amount must be 1 to {disputable} (captured and not refunded)", param="amount")
        cur = charge["currency"]
        dispute_id = new_id("dp")
        fee = dispute_fee(cur)
        txn = self._balance_txn(
            -amount,
            cur,
            "adjustment",
            dispute_id,
            fee=fee,
            category="dispute",
            description=f"Chargeback withdrawal for {charge_id}",
        )
        now = self._now()
        dispute = {
            "id": dispute_id,
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [_public_txn(txn)],
            "charge": charge_id,
            "created": now,
            "currency": cur,
            "evidence": {},
            "evidence_details": {
                "due_by": now + 7 * 86400,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": dict(charge.get("metadata") or {}),
            "payment_intent": charge.get("payment_intent"),
            "reason": reason,
            "status": "needs_response",
        }
        self.store.put("dispute", dispute)
        charge["disputed"] = True
        self.store.put("charge", charge)
        self.emit("charge.dispute.created", dispute, None)
        self.emit("charge.dispute.funds_withdrawn", dispute, None)
        return dispute

    def close_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """``POST /_sim/disputes/{id}/close`` with ``won`` or ``lost``: a won dispute reinstates the disputed amount
        (not the fee); both send ``charge.dispute.closed``."""
        if status not in ("won", "lost"):
            raise invalid_request("status is 'won' or 'lost'", param="status")
        dispute = self._get("dispute", dispute_id, label="dispute")
        if dispute["status"] in ("won", "lost"):
            raise state_error(f"Dispute {dispute_id} is already closed.", code="dispute_already_closed")
        if status == "won":
            txn = self._balance_txn(
                dispute["amount"], dispute["currency"], "adjustment", dispute_id, category="dispute_reversal",
                description=f"Chargeback reversal for {dispute['charge']}",
            )  # fmt: skip
            dispute["balance_transactions"].append(_public_txn(txn))
        dispute["status"] = status
        self.store.put("dispute", dispute)
        if status == "won":
            self.emit("charge.dispute.funds_reinstated", dispute, None)
        self.emit("charge.dispute.closed", dispute, None)
        return dispute

    def retrieve_dispute(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        return self._get("dispute", id)

    def list_disputes(self, req: ApiRequest) -> dict[str, Any]:
        charge = str_param(req.params, "charge")
        return self._list(
            "dispute",
            req,
            "/v1/disputes",
            (lambda d: d["charge"] == charge) if charge else None,
            ["charge", "payment_intent"],
        )

    # -- payouts -----------------------------------------------------------------------------------------------
    def run_payouts(self, fail: bool = False, currency: str | None = None) -> list[dict[str, Any]]:
        """``POST /_sim/payouts``: pay out, per currency, every balance transaction not yet paid out whose sum is
        positive.  Sends ``payout.created`` then ``payout.paid`` (or ``payout.failed`` with ``fail``: the amount
        returns to the balance and the transactions wait for the next payout).  Returns the payouts made."""
        pending: dict[str, list[dict[str, Any]]] = {}
        for txn in self.store.all("balance_transaction"):
            if txn["_sim"].get("payout") is None and txn["type"] not in ("payout", "payout_failure"):
                pending.setdefault(txn["currency"], []).append(txn)
        made = []
        for cur in sorted(pending):
            if currency is not None and cur != currency.lower():
                continue
            txns = pending[cur]
            amount = sum(t["net"] for t in txns)
            if amount <= 0:
                continue
            made.append(self._payout(cur, amount, txns, fail))
        return made

    def _payout(self, cur: str, amount: int, txns: list[dict[str, Any]], fail: bool) -> dict[str, Any]:
        now = self._now()
        payout_id = new_id("po")
        own = self._balance_txn(-amount, cur, "payout", payout_id, description="STRIPE PAYOUT")
        own["_sim"]["payout"] = payout_id
        for txn in txns:
            txn["_sim"]["payout"] = payout_id
            self.store.put("balance_transaction", txn)
        payout = {
            "id": payout_id,
            "object": "payout",
            "amount": amount,
            "arrival_date": now,
            "automatic": False,
            "balance_transaction": own["id"],
            "created": now,
            "currency": cur,
            "description": "STRIPE PAYOUT",
            "destination": "ba_sandbox",
            "failure_balance_transaction": None,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": {},
            "method": "standard",
            "reconciliation_status": "completed",
            "source_type": "card",
            "statement_descriptor": None,
            "status": "in_transit",
            "type": "bank_account",
        }
        self.store.put("payout", payout)
        self.emit("payout.created", payout, None)
        if fail:
            back = self._balance_txn(amount, cur, "payout_failure", payout_id, description="Payout failure")
            back["_sim"]["payout"] = payout_id
            for txn in txns:  # released: the next payout takes them
                txn["_sim"]["payout"] = None
                self.store.put("balance_transaction", txn)
            payout.update(
                status="failed",
                failure_balance_transaction=back["id"],
                failure_code="account_closed",
                failure_message="The bank account has been closed.",
            )
            self.store.put("payout", payout)
            self.emit("payout.failed", payout, None)
        else:
            payout["status"] = "paid"
            self.store.put("payout", payout)
            self.emit("payout.paid", payout, None)
        return payout

    def retrieve_payout(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        return self._get("payout", id)

    def list_payouts(self, req: ApiRequest) -> dict[str, Any]:
        status = str_param(req.params, "status")
        return self._list(
            "payout",
            req,
            "/v1/payouts",
            (lambda p: p["status"] == status) if status else None,
            ["status", "arrival_date"],
        )


def new_balance_txn(
    store: Store,
    now: int,
    amount: int,
    currency: str,
    kind: str,
    source: str,
    *,
    fee: int = 0,
    category: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Store a new balance transaction (available at once) and return it."""
    fee_details = (
        [{"amount": fee, "application": None, "currency": currency, "description": description, "type": "stripe_fee"}]
        if fee
        else []
    )
    txn = {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now,
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": category or kind,
        "source": source,
        "status": "available",
        "type": kind,
        "_sim": {"payout": None},
    }
    return store.put("balance_transaction", txn)


def book_charge(store: Store, now: int, charge: dict[str, Any], amount: int) -> None:
    """Give a captured ``charge`` its balance transaction: ``amount`` captured, Stripe's fee by the card's country."""
    country = ((charge.get("payment_method_details") or {}).get("card") or {}).get("country")
    fee = processing_fee(amount, charge["currency"], country)
    txn = new_balance_txn(
        store, now, amount, charge["currency"], "charge", charge["id"], fee=fee, description="Stripe processing fees"
    )
    charge["balance_transaction"] = txn["id"]


def book_refund(store: Store, now: int, refund: dict[str, Any]) -> None:
    """Give a refund its (negative, fee-less) balance transaction."""
    txn = new_balance_txn(store, now, -refund["amount"], refund["currency"], "refund", refund["id"])
    refund["balance_transaction"] = txn["id"]


def _public_txn(txn: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in txn.items() if k != "_sim"}
