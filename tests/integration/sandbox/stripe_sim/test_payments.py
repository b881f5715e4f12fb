"""PaymentIntents with Stripe's documented test payment methods, through the official SDK."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tests.integration.sandbox.stripe_sim.conftest import sim_config


def _pay(client: stripe.StripeClient, pm: str, **extra: object) -> stripe.PaymentIntent:
    params = {"amount": 2000, "currency": "eur", "payment_method": pm, "confirm": True, **extra}
    return client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]


def test_customer_and_visa_payment_succeed(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.com", "metadata": {"ref": "c1"}})
    assert customer.id.startswith("cus_") and customer.email == "ada@example.com"
    intent = client.v1.payment_intents.create(
        params={
            "amount": 2000,
            "currency": "EUR",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"job_id": "job_1"},
        }
    )
    assert intent.status == "succeeded"
    assert intent.currency == "eur" and intent.amount_received == 2000
    assert isinstance(intent.latest_charge, str) and intent.latest_charge.startswith("ch_")
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.status == "succeeded" and charge.captured and charge.paid
    assert charge.payment_intent == intent.id and charge.metadata["job_id"] == "job_1"
    card = charge.payment_method_details.card  # type: ignore[union-attr]
    assert card is not None and card.brand == "visa" and card.last4 == "4242"
    # A test token materializes a new PaymentMethod, as on Stripe.
    assert isinstance(intent.payment_method, str) and intent.payment_method != "pm_card_visa"
    retrieved = client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert retrieved.latest_charge.id == charge.id  # type: ignore[union-attr]
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).data]
    assert {"customer.created", "payment_intent.created", "charge.succeeded", "payment_intent.succeeded"} <= set(types)


@pytest.mark.parametrize(
    ("pm", "code", "decline_code"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
        ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
        ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
        ("pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent"),
        ("pm_card_visa_chargeDeclinedVelocityLimitExceeded", "card_declined", "card_velocity_exceeded"),
        ("pm_card_radarBlock", "card_declined", "fraudulent"),
    ],
)
def test_documented_declines_raise_card_error(
    client: stripe.StripeClient, http: httpx.Client, pm: str, code: str, decline_code: str
) -> None:
    with pytest.raises(stripe.CardError) as info:
        _pay(client, pm, metadata={"job_id": "declined"})
    err = info.value
    assert err.http_status == 402 and err.code == code
    assert err.error is not None and err.error.decline_code == decline_code and err.error.type == "card_error"
    intent = err.error.payment_intent
    assert intent is not None and intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None and intent.last_payment_error.decline_code == decline_code
    charge = client.v1.charges.retrieve(err.error.charge)  # type: ignore[arg-type]
    assert charge.status == "failed" and not charge.paid and charge.failure_code == code
    if pm == "pm_card_radarBlock":
        assert charge.outcome is not None and charge.outcome.type == "blocked"
    listed = http.get("/_sim/payment_intents", params={"job_id": "declined"}).json()["data"]
    assert [p["status"] for p in listed] == ["requires_payment_method"]
    assert [c["status"] for c in http.get("/_sim/charges").json()["data"]] == ["failed"]


def test_create_then_confirm_and_retrieve(client: stripe.StripeClient) -> None:
    intent = client.v1.payment_intents.create(params={"amount": 500, "currency": "usd"})
    assert intent.status == "requires_payment_method" and intent.latest_charge is None
    confirmed = client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_mastercard"})
    assert confirmed.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert info.value.code == "payment_intent_unexpected_state"


def test_declined_intent_can_be_retried_with_another_card(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        _pay(client, "pm_card_chargeDeclined")
    intent_id = info.value.error.payment_intent.id  # type: ignore[union-attr]
    intent = client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_amex"})
    assert intent.status == "succeeded" and intent.last_payment_error is None


def test_three_d_secure_then_sim_authenticate(client: stripe.StripeClient, http: httpx.Client) -> None:
    intent = _pay(client, "pm_card_threeDSecure2Required", metadata={"job_id": "3ds"})
    assert intent.status == "requires_action"
    assert intent.next_action is not None and intent.next_action.type == "use_stripe_sdk"
    response = http.post(f"/_sim/payment_intents/{intent.id}/authenticate", json={"result": "succeeded"})
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    events = client.v1.events.list(params={"type": "payment_intent.*"}).data
    kinds = [e.type for e in events]
    assert "payment_intent.requires_action" in kinds and "payment_intent.succeeded" in kinds
    succeeded = next(e for e in events if e.type == "payment_intent.succeeded")
    assert succeeded.data.object["id"] == intent.id


def test_three_d_secure_failed_authentication(client: stripe.StripeClient, http: httpx.Client) -> None:
    intent = _pay(client, "pm_card_authenticationRequired", return_url="https://example.com/back")
    assert intent.next_action is not None and intent.next_action.type == "redirect_to_url"
    body = http.post(f"/_sim/payment_intents/{intent.id}/authenticate", json={"result": "failed"}).json()
    assert body["status"] == "requires_payment_method"
    assert body["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    again = http.post(f"/_sim/payment_intents/{intent.id}/authenticate", json={"result": "succeeded"})
    assert again.status_code == 400


def test_authentication_then_decline(client: stripe.StripeClient, http: httpx.Client) -> None:
    intent = _pay(client, "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds")
    assert intent.status == "requires_action"
    body = http.post(f"/_sim/payment_intents/{intent.id}/authenticate", json={"result": "succeeded"}).json()
    assert body["status"] == "requires_payment_method"
    assert body["last_payment_error"]["decline_code"] == "insufficient_funds"


def test_off_session_authentication_required_is_a_card_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as info:
        _pay(client, "pm_card_authenticationRequired", off_session=True)
    assert info.value.code == "authentication_required"
    assert info.value.error.decline_code == "authentication_required"  # type: ignore[union-attr]


def test_manual_capture_and_cancel(client: stripe.StripeClient) -> None:
    intent = _pay(client, "pm_card_visa", capture_method="manual")
    assert intent.status == "requires_capture" and intent.amount_capturable == 2000
    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 1500})
    assert captured.status == "succeeded" and captured.amount_received == 1500
    charge = client.v1.charges.retrieve(captured.latest_charge)  # type: ignore[arg-type]
    assert charge.amount_captured == 1500 and charge.captured
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1600})
    assert info.value.code == "amount_too_large"
    other = _pay(client, "pm_card_visa", capture_method="manual")
    canceled = client.v1.payment_intents.cancel(other.id, params={"cancellation_reason": "requested_by_customer"})
    assert canceled.status == "canceled" and canceled.cancellation_reason == "requested_by_customer"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.cancel(intent.id)


def test_list_by_customer_and_search_by_metadata(client: stripe.StripeClient) -> None:
    first = client.v1.customers.create()
    second = client.v1.customers.create()
    for i, customer in enumerate([first, first, second]):
        _pay(client, "pm_card_visa", customer=customer.id, metadata={"job_id": f"job_{i}", "batch": "b1"})
    listed = client.v1.payment_intents.list(params={"customer": first.id})
    assert len(listed.data) == 2 and all(p.customer == first.id for p in listed.data)
    found = client.v1.payment_intents.search(params={"query": "metadata['job_id']:'job_2'"})
    assert [p.customer for p in found.data] == [second.id]
    both = client.v1.payment_intents.search(
        params={"query": "metadata['job_id']:'job_0' OR metadata['job_id']:'job_1'"}
    )
    assert len(both.data) == 2
    combined = client.v1.payment_intents.search(
        params={"query": f"metadata['batch']:'b1' AND customer:'{second.id}' AND status:'succeeded'"}
    )
    assert len(combined.data) == 1
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.search(params={"query": "metadata['a']:'x' AND b:'y' OR c:'z'"})
    assert info.value.param == "query"
    page = client.v1.payment_intents.list(params={"limit": 2})
    assert page.has_more and len(page.data) == 2
    rest = client.v1.payment_intents.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert len(rest.data) == 1 and not rest.has_more


@pytest.mark.parametrize(
    ("pm", "country", "brand"),
    [
        ("pm_card_de", "DE", "visa"),
        ("pm_card_fr", "FR", "visa"),
        ("pm_card_amex", "US", "amex"),
        ("pm_card_mastercard", "US", "mastercard"),
    ],
)
def test_payment_methods_carry_card_details(client: stripe.StripeClient, pm: str, country: str, brand: str) -> None:
    method = client.v1.payment_methods.retrieve(pm)
    assert method.card is not None and method.card.country == country and method.card.brand == brand
    assert len(method.card.last4) == 4
    intent = _pay(client, pm)
    charge = client.v1.charges.retrieve(intent.latest_charge)  # type: ignore[arg-type]
    assert charge.payment_method_details.card.country == country  # type: ignore[union-attr]


def test_attach_payment_method_to_customer(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert pm.id.startswith("pm_") and pm.id != "pm_card_visa" and pm.customer == customer.id
    updated = client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}, "metadata": {"a": "1"}}
    )
    assert updated.invoice_settings.default_payment_method == pm.id  # type: ignore[union-attr]
    intent = _pay(client, pm.id, customer=customer.id, off_session=True)
    assert intent.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_methods.retrieve("pm_does_not_exist")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"


def test_decline_payment_methods_knob(client: stripe.StripeClient, http: httpx.Client) -> None:
    sim_config(http, decline_payment_methods={"pm_card_visa": "insufficient_funds"})
    with pytest.raises(stripe.CardError) as info:
        _pay(client, "pm_card_visa")
    assert info.value.error.decline_code == "insufficient_funds"  # type: ignore[union-attr]
    assert _pay(client, "pm_card_mastercard").status == "succeeded"


def test_validation_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"currency": "eur"})  # type: ignore[typeddict-item]
    assert info.value.param == "amount" and info.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.create(params={"amount": 100, "currency": "eur", "colour": "red"})  # type: ignore[typeddict-unknown-key]
    assert info.value.code == "parameter_unknown" and info.value.param == "colour"
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.payment_intents.retrieve("pi_missing")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as info:
        _pay(client, "pm_unknown")
    assert info.value.param == "payment_method"


def test_expand_on_objects_and_lists(client: stripe.StripeClient, http: httpx.Client) -> None:
    customer = client.v1.customers.create()
    intent = _pay(client, "pm_card_visa", customer=customer.id)
    body = http.get(f"/v1/payment_intents/{intent.id}", params={"expand[]": ["customer", "payment_method"]}).json()
    assert body["customer"]["id"] == customer.id and body["payment_method"]["object"] == "payment_method"
    listed = http.get("/v1/payment_intents", params={"expand[0]": "data.latest_charge"}).json()
    assert listed["data"][0]["latest_charge"]["object"] == "charge"
    bad = http.get(f"/v1/payment_intents/{intent.id}", params={"expand[]": "nonsense"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "expand"


def test_customer_update_delete_and_intent_update(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "a@example.com", "metadata": {"a": "1", "b": "2"}})
    updated = client.v1.customers.update(customer.id, params={"name": "Ada", "metadata": {"a": ""}})
    assert updated.name == "Ada" and updated.to_dict()["metadata"] == {"b": "2"}
    intent = client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur", "customer": customer.id})
    changed = client.v1.payment_intents.update(intent.id, params={"amount": 1200, "metadata": {"job_id": "u"}})
    assert changed.amount == 1200 and changed.metadata["job_id"] == "u"
    deleted = client.v1.customers.delete(customer.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur", "customer": customer.id})
    types = [e.type for e in client.v1.events.list(params={"type": "customer.*"}).data]
    assert types == ["customer.deleted", "customer.updated", "customer.created"]


def test_metadata_limits(client: stripe.StripeClient) -> None:
    for metadata in ({f"k{i}": "v" for i in range(51)}, {"k" * 41: "v"}, {"k": "v" * 501}):
        with pytest.raises(stripe.InvalidRequestError) as info:
            client.v1.customers.create(params={"metadata": metadata})
        assert info.value.param is not None and info.value.param.startswith("metadata")
    fifty = client.v1.customers.create(params={"metadata": {f"k{i}": "v" for i in range(50)}})
    assert len(fifty.to_dict()["metadata"]) == 50


def test_payment_method_from_test_number_and_live_number(client: stripe.StripeClient, http: httpx.Client) -> None:
    created = http.post(
        "/v1/payment_methods",
        data={"type": "card", "card[number]": "4000000000009995", "card[exp_month]": "4", "card[exp_year]": "31"},
    ).json()
    assert created["card"]["last4"] == "9995" and created["card"]["exp_year"] == 2031
    with pytest.raises(stripe.CardError) as info:
        _pay(client, created["id"])
    assert info.value.error.decline_code == "insufficient_funds"  # type: ignore[union-attr]
    live = http.post("/v1/payment_methods", data={"type": "card", "card[number]": "4111111111111111"})
    assert live.status_code == 402 and live.json()["error"]["decline_code"] == "test_mode_live_card"


def test_customer_created_with_a_default_payment_method(client: stripe.StripeClient, http: httpx.Client) -> None:
    customer = client.v1.customers.create(
        params={"payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    owned = client.v1.customers.payment_methods.list(customer.id)
    assert [pm.customer for pm in owned.data] == [customer.id]
    refused = http.post(
        f"/v1/customers/{customer.id}",
        data={"name": "X", "invoice_settings[default_payment_method]": "pm_missing"},
    )
    assert refused.status_code == 400
    assert client.v1.customers.retrieve(customer.id).name is None  # a refused update changes nothing
