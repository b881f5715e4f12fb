"""The sandbox's balance: fees on charges (EEA 1.5 % + EUR 0.25), refunds, disputes and payouts, through the
official SDK and the ``/_sim`` routes."""

from __future__ import annotations

import httpx
import pytest
import stripe

from sandbox.stripe_sim.balance import processing_fee


def _pay(
    client: stripe.StripeClient, amount: int, pm: str = "pm_card_fr", currency: str = "eur"
) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={"amount": amount, "currency": currency, "payment_method": pm, "confirm": True}
    )


@pytest.mark.parametrize(
    ("amount", "currency", "country", "fee"),
    [
        (10_000, "eur", "FR", 175),  # 1.5 % of 100.00 + 0.25
        (1_234, "eur", "DE", 44),  # 18.51 → 19, + 25
        (10_000, "eur", "GB", 275),  # UK cards 2.5 %
        (10_000, "eur", "US", 350),  # international 3.25 %
        (10_000, "jpy", "FR", 150),  # no fixed part in a zero-decimal currency
        (10_000, "kwd", "FR", 400),  # 0.250 KWD fixed
    ],
)
def test_processing_fee_model(amount: int, currency: str, country: str, fee: int) -> None:
    assert processing_fee(amount, currency, country) == fee


def test_a_charge_has_a_balance_transaction_with_the_eea_fee(client: stripe.StripeClient) -> None:
    intent = _pay(client, 10_000)
    charge = client.v1.charges.retrieve(str(intent.latest_charge), params={"expand": ["balance_transaction"]})
    txn = charge.balance_transaction
    assert txn.type == "charge" and txn.source == charge.id
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (10_000, 175, 9_825, "eur")
    assert txn.fee_details[0].type == "stripe_fee"
    assert client.v1.balance_transactions.retrieve(txn.id).fee == 175


def test_refund_dispute_and_payout_balance(client: stripe.StripeClient, http: httpx.Client) -> None:
    """A payout pays out the sum of its balance transactions: charges net of fees, minus refunds, minus dispute
    withdrawals and fees, plus a won dispute's reinstatement."""
    a = _pay(client, 10_000)
    b = _pay(client, 5_000)
    client.v1.refunds.create(params={"payment_intent": a.id, "amount": 3_000})
    opened = http.post(f"/_sim/charges/{b.latest_charge}/dispute", json={"reason": "fraudulent"})
    assert opened.status_code == 200, opened.text
    dispute = opened.json()
    assert dispute["status"] == "needs_response" and dispute["amount"] == 5_000
    assert dispute["balance_transactions"][0]["fee"] == 2_000  # EUR 20.00
    assert client.v1.disputes.retrieve(dispute["id"]).status == "needs_response"
    closed = http.post(f"/_sim/disputes/{dispute['id']}/close", json={"status": "won"}).json()
    assert closed["status"] == "won" and len(closed["balance_transactions"]) == 2
    assert http.post(f"/_sim/disputes/{dispute['id']}/close", json={"status": "lost"}).status_code == 400

    payouts = http.post("/_sim/payouts", json={}).json()["data"]
    assert len(payouts) == 1
    payout = payouts[0]
    # 10000 − 175 + 5000 − 100 − 3000 − 5000 − 2000 + 5000
    assert payout["amount"] == 9_725 and payout["status"] == "paid"
    txns = client.v1.balance_transactions.list(params={"payout": payout["id"], "limit": 100}).data
    assert sum(t.net for t in txns if t.type != "payout") == payout["amount"]
    assert [t.amount for t in txns if t.type == "payout"] == [-9_725]
    assert client.v1.payouts.retrieve(payout["id"]).status == "paid"
    assert http.post("/_sim/payouts", json={}).json()["data"] == []  # nothing left to pay out


def test_a_failed_payout_returns_the_money_for_the_next_one(client: stripe.StripeClient, http: httpx.Client) -> None:
    _pay(client, 2_000)
    failed = http.post("/_sim/payouts", json={"fail": True}).json()["data"][0]
    assert failed["status"] == "failed" and failed["failure_code"] == "account_closed"
    paid = http.post("/_sim/payouts", json={}).json()["data"][0]
    assert paid["status"] == "paid" and paid["amount"] == failed["amount"] == 2_000 - 55
    events = [e["type"] for e in http.get("/_sim/events").json()["data"]]
    assert events.count("payout.failed") == 1 and events.count("payout.paid") == 1
