"""PaymentMethods: Stripe's test tokens, create from test cards, retrieve, attach and detach."""

from __future__ import annotations

import time
from typing import Any

from sandbox.stripe_sim.api_base import ApiBase, ApiRequest
from sandbox.stripe_sim.errors import (
    StripeError,
    api_error,
    invalid_request,
    missing_param,
    resource_missing,
    state_error,
)
from sandbox.stripe_sim.objects import billing_details, new_id, payment_method_object
from sandbox.stripe_sim.params import COMMON, check_params, int_param, metadata_param, str_param
from sandbox.stripe_sim.test_methods import decline_error_fields, find_test_card


class PaymentMethodEndpoints(ApiBase):
    """PaymentMethods: Stripe's test tokens, create from test cards, retrieve, attach and detach."""

    def create_payment_method(self, req: ApiRequest) -> dict[str, Any]:
        params = req.params
        check_params(params, COMMON | {"type", "card", "billing_details", "metadata", "allow_redisplay"})
        pm_type = str_param(params, "type", required=True)
        if pm_type != "card":
            raise invalid_request(
                f"The payment method type {pm_type!r} is not supported by the sandbox; use card.", param="type"
            )
        card_params = params.get("card")
        if not isinstance(card_params, dict):
            raise missing_param("card")
        ref = card_params.get("token") or card_params.get("number")
        if not isinstance(ref, str):
            raise missing_param("card[number]")
        card = find_test_card(ref)
        if card is None:
            if not ref.startswith("tok_"):
                # Stripe refuses real card numbers in test mode with a card error.
                raise StripeError(
                    402,
                    "card_error",
                    "Your card was declined. Your request was in test mode, but used a non test (live) card. For a "
                    "list of valid test cards, visit: https://stripe.com/docs/testing.",
                    code="card_declined",
                    decline_code="test_mode_live_card",
                    param="card[number]",
                    saved=False,
                )
            raise invalid_request(f"No such token: '{ref}'", param="card[token]", code="resource_missing")
        now = self._now()
        pm = payment_method_object(new_id("pm"), card, now, card.token, time.gmtime(now).tm_year + 3)
        exp_month = int_param(card_params, "exp_month")
        exp_year = int_param(card_params, "exp_year")
        if exp_month is not None:
            pm["card"]["exp_month"] = exp_month
        if exp_year is not None:
            pm["card"]["exp_year"] = exp_year if exp_year >= 100 else 2000 + exp_year
        details = params.get("billing_details")
        if isinstance(details, dict):
            bd = billing_details()
            for key in ("email", "name", "phone"):
                if isinstance(details.get(key), str):
                    bd[key] = details[key]
            if isinstance(details.get("address"), dict):
                bd["address"].update({k: v for k, v in details["address"].items() if k in bd["address"]})
            pm["billing_details"] = bd
        pm["metadata"] = metadata_param(params)
        return self.store.put("payment_method", pm)

    def retrieve_payment_method(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        pm = self.store.get("payment_method", id)
        if pm is not None:
            if self.faults.fails(*self._pm_names(pm)):
                raise api_error(saved=False)
            return pm
        card = find_test_card(id) if id.startswith("pm_card_") else None
        if card is None:
            raise resource_missing("PaymentMethod", id)
        if self.faults.fails(id, card.token):
            raise api_error(saved=False)
        # A test token read without being used: describe it under its own id (nothing is stored).
        now = self._now()
        view = payment_method_object(id, card, now, id, time.gmtime(now).tm_year + 3)
        return view

    def attach_payment_method(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON | {"customer"})
        customer_id = str_param(req.params, "customer", required=True)
        assert customer_id is not None
        self._get("customer", customer_id, "customer")
        if self.faults.fails(id) or (
            self.store.get("payment_method", id) is not None
            and self.faults.fails(*self._pm_names(self._get("payment_method", id)))
        ):
            raise api_error(saved=True)
        pm = self._materialize(id, "payment_method")
        if pm["customer"] not in (None, customer_id):
            raise state_error(
                "The payment method you provided has already been attached to a customer.",
                code="payment_method_unexpected_state",
            )
        card = self._test_card_of(pm)
        forced = self.faults.forced_decline(*self._pm_names(pm))
        if card.token == "pm_card_chargeCustomerFail":
            pass  # attaching succeeds, charging fails
        elif forced is not None or card.behavior == "decline":
            code = forced or card.decline_code or "generic_decline"
            err_code, message, param = decline_error_fields(code)
            raise StripeError(402, "card_error", message, code=err_code, decline_code=code, param=param)
        pm["customer"] = customer_id
        self.store.put("payment_method", pm)
        self.emit("payment_method.attached", pm, req)
        return pm

    def detach_payment_method(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        pm = self._get("payment_method", id, label="PaymentMethod")
        if pm["customer"] is None:
            raise state_error(
                "The payment method you provided is not attached to a customer so detachment is impossible.",
                code="payment_method_unexpected_state",
            )
        pm["customer"] = None
        self.store.put("payment_method", pm)
        self.emit("payment_method.detached", pm, req)
        return pm
