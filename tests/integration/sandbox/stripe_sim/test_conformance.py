"""Conformance: every object the sandbox returns validates against the Stripe OpenAPI subset."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.sandbox.stripe_sim.conftest import Receiver
from tests.integration.sandbox.stripe_sim.schema import known_fields, validate

# The subset has no payment_method / webhook_endpoint components; these minimal schemas follow Stripe's API
# reference for the members an engine reads.
PAYMENT_METHOD = {
    "type": "object",
    "required": ["id", "object", "billing_details", "card", "created", "customer", "livemode", "metadata", "type"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["payment_method"]},
        "created": {"type": "integer"},
        "customer": {"type": "string", "nullable": True},
        "livemode": {"type": "boolean"},
        "type": {"type": "string", "enum": ["card"]},
        "card": {
            "type": "object",
            "required": ["brand", "country", "exp_month", "exp_year", "funding", "last4"],
            "properties": {
                "brand": {
                    "type": "string",
                    "enum": [
                        "amex",
                        "diners",
                        "discover",
                        "eftpos_au",
                        "jcb",
                        "mastercard",
                        "unionpay",
                        "visa",
                        "unknown",
                    ],
                },
                "country": {"type": "string", "maxLength": 2},
                "exp_month": {"type": "integer"},
                "exp_year": {"type": "integer"},
                "funding": {"type": "string", "enum": ["credit", "debit", "prepaid", "unknown"]},
                "last4": {"type": "string", "maxLength": 4},
            },
        },
    },
}
WEBHOOK_ENDPOINT = {
    "type": "object",
    "required": [
        "id",
        "object",
        "api_version",
        "application",
        "created",
        "description",
        "enabled_events",
        "livemode",
        "metadata",
        "status",
        "url",
    ],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["webhook_endpoint"]},
        "api_version": {"type": "string", "nullable": True},
        "created": {"type": "integer"},
        "enabled_events": {"type": "array", "items": {"type": "string"}},
        "livemode": {"type": "boolean"},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "secret": {"type": "string"},
        "status": {"type": "string", "enum": ["enabled", "disabled"]},
        "url": {"type": "string"},
    },
}


def _collect(http: httpx.Client, receiver: Receiver) -> dict[str, list[dict[str, Any]]]:
    """Drive the sandbox through every state an engine meets and gather what it answered."""
    got: dict[str, list[dict[str, Any]]] = {
        k: []
        for k in (
            "customer",
            "payment_intent",
            "charge",
            "refund",
            "event",
            "payment_method",
            "webhook_endpoint",
            "error",
        )
    }

    def ok(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    got["webhook_endpoint"].append(
        ok(http.post("/v1/webhook_endpoints", data={"url": receiver.url, "enabled_events[0]": "*"}))
    )
    customer = ok(http.post("/v1/customers", data={"email": "c@example.com", "name": "C", "metadata[k]": "v"}))
    got["customer"].append(customer)
    got["payment_method"].append(
        ok(http.post("/v1/payment_methods/pm_card_de/attach", data={"customer": customer["id"]}))
    )
    got["payment_method"].append(ok(http.get("/v1/payment_methods/pm_card_amex")))
    base = {
        "amount": "2000",
        "currency": "eur",
        "customer": customer["id"],
        "confirm": "true",
        "metadata[job_id]": "conf",
    }
    paid = ok(http.post("/v1/payment_intents", data={**base, "payment_method": "pm_card_visa"}))
    got["payment_intent"].append(paid)
    got["payment_intent"].append(
        ok(http.post("/v1/payment_intents", data={**base, "payment_method": "pm_card_threeDSecure2Required"}))
    )
    held = ok(
        http.post("/v1/payment_intents", data={**base, "payment_method": "pm_card_visa", "capture_method": "manual"})
    )
    got["payment_intent"].append(held)
    got["payment_intent"].append(ok(http.post(f"/v1/payment_intents/{held['id']}/cancel")))
    got["payment_intent"].append(ok(http.post("/v1/payment_intents", data={"amount": "100", "currency": "jpy"})))
    declined = http.post("/v1/payment_intents", data={**base, "payment_method": "pm_card_chargeDeclined"})
    assert declined.status_code == 402
    got["error"].append(declined.json())
    got["payment_intent"].append(declined.json()["error"]["payment_intent"])
    for bad in (
        http.post("/v1/payment_intents", data={"currency": "eur"}),
        http.get("/v1/charges/ch_missing"),
        httpx.post(str(http.base_url.join("/v1/customers"))),
    ):
        got["error"].append(bad.json())
    got["refund"].append(
        ok(
            http.post(
                "/v1/refunds", data={"payment_intent": paid["id"], "amount": "500", "reason": "requested_by_customer"}
            )
        )
    )
    got["refund"].append(ok(http.post("/v1/refunds", data={"charge": paid["latest_charge"]})))
    got["charge"] = ok(http.get("/v1/charges", params={"limit": "100"}))["data"]
    got["event"] = ok(http.get("/v1/events", params={"limit": "100"}))["data"]
    got["payment_intent"].append(ok(http.get(f"/v1/payment_intents/{paid['id']}")))
    return got


@pytest.fixture
def answers(http: httpx.Client, receiver: Receiver) -> dict[str, list[dict[str, Any]]]:
    return _collect(http, receiver)


@pytest.mark.parametrize("kind", ["customer", "payment_intent", "charge", "refund", "event", "error"])
def test_objects_validate_against_the_openapi_subset(answers: dict[str, list[dict[str, Any]]], kind: str) -> None:
    objects = answers[kind]
    assert objects, f"no {kind} collected"
    for obj in objects:
        assert validate(obj, kind) == [], obj.get("id")


def test_event_payloads_validate(answers: dict[str, list[dict[str, Any]]]) -> None:
    schema_for = {"payment_intent": "payment_intent", "charge": "charge", "refund": "refund", "customer": "customer"}
    seen = set()
    for event in answers["event"]:
        obj = event["data"]["object"]
        if obj["object"] in schema_for:
            seen.add(obj["object"])
            assert validate(obj, schema_for[obj["object"]]) == [], event["type"]
    assert seen == set(schema_for)


@pytest.mark.parametrize("kind", ["customer", "payment_intent", "charge", "refund", "event"])
def test_no_invented_fields(answers: dict[str, list[dict[str, Any]]], kind: str) -> None:
    known = known_fields(kind)
    for obj in answers[kind]:
        assert set(obj) - known - {"deleted"} == set(), obj["id"]


def test_payment_method_and_webhook_endpoint_shapes(answers: dict[str, list[dict[str, Any]]]) -> None:
    from tests.integration.sandbox.stripe_sim.schema import _check

    for pm in answers["payment_method"]:
        assert _check(pm, PAYMENT_METHOD, "payment_method") == []
    endpoint = answers["webhook_endpoint"][0]
    assert _check(endpoint, WEBHOOK_ENDPOINT, "webhook_endpoint") == []
    assert endpoint["secret"].startswith("whsec_")


def test_lists_have_stripes_shape(http: httpx.Client) -> None:
    http.post("/v1/customers")
    body = http.get("/v1/customers").json()
    assert body["object"] == "list" and body["url"] == "/v1/customers" and body["has_more"] is False
    assert [validate(c, "customer") for c in body["data"]] == [[]]
