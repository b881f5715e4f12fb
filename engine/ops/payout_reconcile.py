"""``payments reconcile payouts``: Stripe's payouts against their balance transactions and the ledger.

Checks (docs/operations.md, "Payout reconciliation"):

* every paid payout equals the sum of its balance transactions' ``net`` — charges less fees, less refunds, less
  dispute withdrawals and fees, plus reinstatements (``payout_sum_differs``);
* every paid payout is booked once with its amount and currency (``payout:{po}:paid``: ``payout_not_booked``,
  ``payout_amount_differs``), and a failed payout is not left booked as paid (``failed_payout_booked``);
* per currency, the ledger's ``stripe_clearing`` equals what Stripe holds and has not paid out (the sum of every
  balance transaction's ``net`` less the paid payouts); so for a paid-out period — nothing left at Stripe — the
  clearing account is back at zero (``clearing_differs``).

Reads only.  ``currency`` limits every check to one currency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.adapters.stripe_balance import payout_transactions, payouts
from engine.adapters.stripe_gateway import StripeGateway
from engine.db.ledger import balances, find, postings_of
from engine.domain.ledger import STRIPE_CLEARING

__all__ = ["PayoutFinding", "PayoutReport", "reconcile_payouts"]

#: Balance transactions that are the payout itself, not what it pays out.
_PAYOUT_TYPES = ("payout", "payout_failure", "payout_cancel")


@dataclass(frozen=True)
class PayoutFinding:
    kind: str
    payout: str | None
    currency: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PayoutReport:
    """What was checked: each payout with its sum, and per currency the clearing balance against Stripe's."""

    payouts: list[dict[str, Any]] = field(default_factory=list)
    clearing: dict[str, dict[str, int]] = field(default_factory=dict)
    findings: list[PayoutFinding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "payouts": self.payouts,
            "clearing": self.clearing,
            "findings": [f.to_dict() for f in self.findings],
        }

    def line(self) -> str:
        paid = sum(1 for p in self.payouts if p["status"] == "paid")
        verdict = "ok" if self.ok else f"{len(self.findings)} finding(s)"
        checked = f"clearing checked in {len(self.clearing)} currencies"
        return f"{len(self.payouts)} payout(s), {paid} paid; {checked}: {verdict}"


def reconcile_payouts(db: sa.Engine, gw: StripeGateway, currency: str | None = None) -> PayoutReport:
    """Run the checks of the module docstring.  Raises the SDK's errors and SQLAlchemy's (the caller reports)."""
    cur_filter = currency.lower() if currency else None
    report = PayoutReport()
    paid_out: dict[str, int] = {}
    for payout in payouts(gw):
        cur = str(payout.currency).lower()
        if cur_filter and cur != cur_filter:
            continue
        status = str(payout.status)
        txns = payout_transactions(gw, str(payout.id))
        included = sum(int(t.net) for t in txns if str(t.type) not in _PAYOUT_TYPES)
        entry = {"id": payout.id, "status": status, "currency": cur, "amount": int(payout.amount), "sum": included}
        report.payouts.append(entry)
        booked = _booked(db, str(payout.id))
        if status == "paid":
            paid_out[cur] = paid_out.get(cur, 0) + int(payout.amount)
            if included != int(payout.amount):
                report.findings.append(
                    PayoutFinding(
                        "payout_sum_differs", payout.id, cur, f"payout {payout.amount}, its transactions {included}"
                    )
                )
            if booked is None:
                report.findings.append(PayoutFinding("payout_not_booked", payout.id, cur, "no payout:{po}:paid"))
            elif booked != (cur, int(payout.amount)):
                report.findings.append(
                    PayoutFinding("payout_amount_differs", payout.id, cur, f"booked {booked[1]} {booked[0]}")
                )
        elif status == "failed" and booked is not None and not _reversed(db, str(payout.id)):
            report.findings.append(
                PayoutFinding("failed_payout_booked", payout.id, cur, "booked as paid, never reversed")
            )
    held = _stripe_held(gw, cur_filter)
    ledger = {
        b["currency"]: int(b["balance"])
        for b in balances(db, STRIPE_CLEARING)
        if b["account"] == STRIPE_CLEARING and (cur_filter is None or b["currency"] == cur_filter)
    }
    for cur in sorted(set(held) | set(ledger) | set(paid_out)):
        unpaid = held.get(cur, 0) - paid_out.get(cur, 0)
        report.clearing[cur] = {"ledger": ledger.get(cur, 0), "stripe_unpaid": unpaid}
        if ledger.get(cur, 0) != unpaid:
            report.findings.append(
                PayoutFinding(
                    "clearing_differs", None, cur, f"stripe_clearing {ledger.get(cur, 0)}, Stripe holds {unpaid}"
                )
            )
    return report


def _booked(db: sa.Engine, payout_id: str) -> tuple[str, int] | None:
    """(currency, amount) the ledger booked as paid out for ``payout_id``, or None."""
    with db.connect() as conn:
        txn = find(conn, f"payout:{payout_id}:paid")
        if txn is None:
            return None
        postings = postings_of(conn, [txn]).get(txn, [])
    for p in postings:
        if p.account == STRIPE_CLEARING:
            return p.currency, -p.amount
    return None


def _reversed(db: sa.Engine, payout_id: str) -> bool:
    with db.connect() as conn:
        return find(conn, f"payout:{payout_id}:failed") is not None


def _stripe_held(gw: StripeGateway, currency: str | None) -> dict[str, int]:
    """Per currency, the sum of every balance transaction's ``net`` that is not a payout's own (what Stripe took in
    for the account, before payouts)."""
    params: dict[str, Any] = {"limit": 100}
    if currency:
        params["currency"] = currency
    held: dict[str, int] = {}
    while True:
        page = gw.call("reconcile", gw.client.v1.balance_transactions.list, params=params)
        for t in page.data:
            if str(t.type) in _PAYOUT_TYPES:
                continue
            cur = str(t.currency).lower()
            held[cur] = held.get(cur, 0) + int(t.net)
        if not page.has_more or not page.data:
            return held
        params["starting_after"] = page.data[-1].id
