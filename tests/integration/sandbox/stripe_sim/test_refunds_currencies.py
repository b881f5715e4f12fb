"""Refunds never exceed what was captured; amounts follow Stripe's currency rules."""

from __future__ import annotations

import httpx
import pytest
import stripe


def _paid(client: stripe.StripeClient, amount: int = 1000, currency: str = "eur") -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": currency,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"job_id": "refund-job"},
        }
    )


def test_full_refund_then_nothing_left(client: stripe.StripeClient) -> None:
    intent = _paid(client)
    refund = client.v1.refunds.create(params={"payment_intent": intent.id, "reason": "requested_by_customer"})
    assert refund.amount == 1000 and refund.status == "succeeded" and refund.charge == intent.latest_charge
    charge = client.v1.charges.retrieve(intent.latest_charge)  # type: ignore[arg-type]
    assert charge.refunded and charge.amount_refunded == 1000
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1})
    assert info.value.code == "charge_already_refunded"
    assert client.v1.refunds.retrieve(refund.id).amount == 1000


def test_partial_refunds_never_exceed_the_amount(client: stripe.StripeClient, http: httpx.Client) -> None:
    intent = _paid(client)
    for amount in (300, 300, 400):
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": amount})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"charge": str(intent.latest_charge), "amount": 1})
    assert info.value.code == "charge_already_refunded"
    other = _paid(client)
    client.v1.refunds.create(params={"payment_intent": other.id, "amount": 600})
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": other.id, "amount": 401})
    assert info.value.code == "amount_too_large" and info.value.param == "amount"
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert sorted(r.amount for r in listed.data) == [300, 300, 400]
    total = sum(r["amount"] for r in http.get("/_sim/refunds").json()["data"])
    assert total == 1600
    events = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert events.count("charge.refunded") == 4 and events.count("refund.created") == 4


def test_refund_of_unpaid_intent_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "eur", "payment_method": "pm_card_chargeDeclined", "confirm": True}
        )
    intent_id = info.value.error.payment_intent.id  # type: ignore[union-attr]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"payment_intent": intent_id})
    assert refused.value.code == "charge_not_refundable"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={})


@pytest.mark.parametrize(
    ("amount", "currency", "ok", "code"),
    [
        (50, "eur", True, None),
        (49, "eur", False, "amount_too_small"),
        (30, "gbp", True, None),
        (29, "gbp", False, "amount_too_small"),
        (50, "jpy", True, None),
        (49, "jpy", False, "amount_too_small"),
        (1000, "kwd", True, None),
        (1005, "kwd", False, "parameter_invalid_integer"),
        (1230, "bhd", True, None),
        (1231, "tnd", False, "parameter_invalid_integer"),
        (1234, "omr", False, "parameter_invalid_integer"),
        (50000, "isk", True, None),
        (50050, "isk", False, "parameter_invalid_integer"),
        (100_000_000, "usd", False, "amount_too_large"),
    ],
)
def test_currency_amount_rules(
    client: stripe.StripeClient, amount: int, currency: str, ok: bool, code: str | None
) -> None:
    params = {"amount": amount, "currency": currency.upper(), "payment_method": "pm_card_visa", "confirm": True}
    if ok:
        intent = client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
        assert intent.amount == amount and intent.currency == currency
        return
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
    assert info.value.param == "amount" and info.value.code == code and info.value.http_status == 400


def test_three_decimal_refunds_end_in_zero(client: stripe.StripeClient) -> None:
    intent = _paid(client, 5000, "kwd")
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1005})
    assert info.value.param == "amount"
    assert client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1010}).amount == 1010


def test_unsupported_currency(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "xyz"})
    assert info.value.param == "currency"
