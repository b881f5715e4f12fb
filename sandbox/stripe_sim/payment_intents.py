"""PaymentIntents and their charges: create, confirm (test card outcomes, 3-D Secure), capture, cancel, list, search."""

from __future__ import annotations

from typing import Any

from sandbox.stripe_sim import currencies
from sandbox.stripe_sim.api_base import ApiBase, ApiRequest
from sandbox.stripe_sim.balance import book_charge
from sandbox.stripe_sim.errors import StripeError, api_error, invalid_request, missing_param, state_error
from sandbox.stripe_sim.objects import charge_object, new_id, payment_intent_object, snapshot
from sandbox.stripe_sim.params import (
    COMMON,
    bool_param,
    check_params,
    enum_param,
    int_param,
    metadata_param,
    str_list_param,
    str_param,
)
from sandbox.stripe_sim.store import public
from sandbox.stripe_sim.test_methods import TestCard, decline_error_fields

PI_CREATE_PARAMS = COMMON | {
    "amount",
    "application_fee_amount",
    "automatic_payment_methods",
    "capture_method",
    "confirm",
    "confirmation_method",
    "currency",
    "customer",
    "description",
    "error_on_requires_action",
    "mandate",
    "mandate_data",
    "metadata",
    "off_session",
    "on_behalf_of",
    "payment_method",
    "payment_method_data",
    "payment_method_options",
    "payment_method_types",
    "radar_options",
    "receipt_email",
    "return_url",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_data",
    "transfer_group",
    "use_stripe_sdk",
}

PI_CONFIRM_PARAMS = COMMON | {
    "capture_method",
    "client_secret",
    "error_on_requires_action",
    "mandate",
    "mandate_data",
    "off_session",
    "payment_method",
    "payment_method_data",
    "payment_method_options",
    "payment_method_types",
    "radar_options",
    "receipt_email",
    "return_url",
    "setup_future_usage",
    "shipping",
    "use_stripe_sdk",
}

PI_UPDATE_PARAMS = COMMON | {
    "amount",
    "currency",
    "customer",
    "description",
    "metadata",
    "payment_method",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "capture_method",
    "payment_method_types",
}

CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")

CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


class PaymentIntentEndpoints(ApiBase):
    """PaymentIntents and their charges: create, confirm, capture, cancel, list, search."""

    def create_payment_intent(self, req: ApiRequest) -> dict[str, Any]:
        params = req.params
        check_params(params, PI_CREATE_PARAMS)
        amount = int_param(params, "amount", required=True)
        currency = currencies.normalize_currency(params.get("currency") or str_param(params, "currency", required=True))
        assert amount is not None
        currencies.check_charge_amount(amount, currency)
        customer_id = str_param(params, "customer")
        if customer_id is not None:
            self._get("customer", customer_id, "customer")
        confirm = bool_param(params, "confirm") or False
        off_session = bool_param(params, "off_session")
        if off_session is not None and not confirm:
            raise invalid_request("You can only use `off_session` when `confirm` is set to true.", param="off_session")
        capture_method = enum_param(params, "capture_method", ("automatic", "automatic_async", "manual"))
        confirmation_method = enum_param(params, "confirmation_method", ("automatic", "manual"))
        setup_future_usage = enum_param(params, "setup_future_usage", ("off_session", "on_session"))
        pm_types = str_list_param(params, "payment_method_types")
        if pm_types is not None and any(t != "card" for t in pm_types):
            raise invalid_request(
                "The sandbox supports the payment method type card only.", param="payment_method_types"
            )
        metadata = metadata_param(params)
        pm_ref = str_param(params, "payment_method")
        if pm_ref is not None:
            stored = self.store.get("payment_method", pm_ref)
            names = self._pm_names(stored) if stored is not None else (pm_ref,)
            if self.faults.fails(*names):
                # The endpoint ran and failed: Stripe keeps this 500 under the idempotency key.
                raise api_error(saved=True)
        pm = self._payment_method_from(params)
        if confirm and pm is None:
            raise invalid_request(
                "You cannot confirm this PaymentIntent because it's missing a payment method. Pass "
                "`payment_method` (for example pm_card_visa) along with `confirm=true`.",
                param="payment_method",
                code="payment_intent_unexpected_state",
            )
        intent = payment_intent_object(new_id("pi"), self._now(), amount, currency)
        intent.update(
            customer=customer_id,
            metadata=metadata,
            description=str_param(params, "description"),
            receipt_email=str_param(params, "receipt_email"),
            statement_descriptor=str_param(params, "statement_descriptor", max_length=22),
            statement_descriptor_suffix=str_param(params, "statement_descriptor_suffix", max_length=22),
            setup_future_usage=setup_future_usage,
            transfer_group=str_param(params, "transfer_group"),
        )
        if capture_method:
            intent["capture_method"] = capture_method
        if confirmation_method:
            intent["confirmation_method"] = confirmation_method
        if pm_types is None:
            # Since API 2023-08-16 Stripe turns on automatic payment methods when no types are given.
            intent["automatic_payment_methods"] = {"allow_redirects": "always", "enabled": True}
        if pm is not None:
            intent["payment_method"] = pm["id"]
            intent["status"] = "requires_confirmation"
        self.store.put("payment_intent", intent)
        self.emit("payment_intent.created", intent, req)
        if confirm:
            assert pm is not None
            self._confirm(intent, params, req, pm, off_session=bool(off_session))
        return intent

    def _payment_method_from(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The PaymentMethod named by ``payment_method`` or ``payment_method_data[card][token]``, or None.

        Raises StripeError 400 ``resource_missing`` for an unknown id or token.
        """
        pm_ref = str_param(params, "payment_method")
        if pm_ref is not None:
            return self._materialize(pm_ref, "payment_method")
        data = params.get("payment_method_data")
        if data is None:
            return None
        card = data.get("card") if isinstance(data, dict) else None
        token = card.get("token") if isinstance(card, dict) else None
        if not isinstance(token, str):
            raise missing_param("payment_method_data[card][token]")
        return self._materialize(token, "payment_method_data[card][token]")

    def retrieve_payment_intent(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON | {"client_secret"})
        return self._get("payment_intent", id, label="payment_intent")

    def update_payment_intent(self, req: ApiRequest, id: str) -> dict[str, Any]:
        params = req.params
        check_params(params, PI_UPDATE_PARAMS)
        intent = self._get("payment_intent", id, label="payment_intent")
        editable = intent["status"] in ("requires_payment_method", "requires_confirmation", "requires_action")
        money_fields = {"amount", "currency", "payment_method", "customer", "capture_method"} & set(params)
        if money_fields and not editable:
            raise state_error(
                f"This PaymentIntent's {sorted(money_fields)[0]} could not be updated because it has a status of "
                f"{intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        # Validate everything first: a refused update must leave the intent untouched.
        changes: dict[str, Any] = {}
        if "amount" in params or "currency" in params:
            new_amount = int_param(params, "amount")
            amount = intent["amount"] if new_amount is None else new_amount
            currency = currencies.normalize_currency(params["currency"]) if "currency" in params else intent["currency"]
            currencies.check_charge_amount(amount, currency)
            changes.update(amount=amount, currency=currency)
        if "customer" in params:
            customer_id = str_param(params, "customer")
            if customer_id is not None:
                self._get("customer", customer_id, "customer")
            changes["customer"] = customer_id
        if "capture_method" in params:
            changes["capture_method"] = enum_param(params, "capture_method", ("automatic", "automatic_async", "manual"))
        for name in ("description", "receipt_email", "statement_descriptor", "statement_descriptor_suffix"):
            if name in params:
                changes[name] = str_param(params, name)
        changes["metadata"] = metadata_param(params, intent["metadata"])
        if "payment_method" in params:
            pm_ref = str_param(params, "payment_method")
            pm = self._materialize(pm_ref, "payment_method") if pm_ref else None
            changes["payment_method"] = pm["id"] if pm else None
            changes["status"] = "requires_confirmation" if pm else "requires_payment_method"
        intent.update(changes)
        self.store.put("payment_intent", intent)
        return intent

    def confirm_payment_intent(self, req: ApiRequest, id: str) -> dict[str, Any]:
        params = req.params
        check_params(params, PI_CONFIRM_PARAMS)
        intent = self._get("payment_intent", id, label="payment_intent")
        if intent["status"] not in CONFIRMABLE:
            raise state_error(
                f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}. Only a "
                "PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, "
                "requires_payment_method, requires_action.",
                code="payment_intent_unexpected_state",
            )
        if self.faults.fails(str_param(params, "payment_method")):
            raise api_error(saved=True)  # the endpoint ran and failed: saved under the idempotency key
        pm = self._payment_method_from(params)
        if pm is None and intent["payment_method"] is not None:
            pm = self._get("payment_method", intent["payment_method"], "payment_method", "PaymentMethod")
        if pm is None:
            raise state_error(
                "You cannot confirm this PaymentIntent because it's missing a payment method. You can either "
                "update the PaymentIntent with a payment method and then confirm it again, or confirm it again "
                "directly with a payment method.",
                code="payment_intent_unexpected_state",
            )
        capture_method = enum_param(params, "capture_method", ("automatic", "automatic_async", "manual"))
        receipt_email = str_param(params, "receipt_email")
        if self.faults.fails(*self._pm_names(pm)):
            raise api_error(saved=True)
        if capture_method:
            intent["capture_method"] = capture_method
        if "receipt_email" in params:
            intent["receipt_email"] = receipt_email
        self._confirm(intent, params, req, pm, off_session=bool(bool_param(params, "off_session")))
        return intent

    def _confirm(
        self,
        intent: dict[str, Any],
        params: dict[str, Any],
        req: ApiRequest,
        pm: dict[str, Any],
        *,
        off_session: bool,
    ) -> None:
        """Try to charge ``intent`` with ``pm``; the intent is stored in its new state.

        Raises StripeError 402 (card_error) when the card is declined, after recording the failed charge.
        """
        intent["payment_method"] = pm["id"]
        intent["last_payment_error"] = None
        intent["next_action"] = None
        card = self._test_card_of(pm)
        forced = self.faults.forced_decline(*self._pm_names(pm))
        if forced is not None:
            self._decline(intent, pm, card, forced, req)
        if card.behavior == "decline":
            self._decline(intent, pm, card, card.decline_code or "generic_decline", req)
        if card.behavior == "radar_block":
            self._decline(intent, pm, card, "fraudulent", req, blocked=True)
        needs_auth = card.behavior == "authenticate" or (
            card.behavior == "authenticate_on_setup"
            and not (off_session and pm["customer"] is not None and pm["customer"] == intent["customer"])
        )
        if needs_auth:
            if off_session or bool_param(params, "error_on_requires_action"):
                self._decline(intent, pm, card, "authentication_required", req)
            return_url = str_param(params, "return_url")
            intent["status"] = "requires_action"
            if return_url:
                intent["next_action"] = {
                    "redirect_to_url": {
                        "return_url": return_url,
                        "url": f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent['id']}",
                    },
                    "type": "redirect_to_url",
                }
            else:
                intent["next_action"] = {
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {
                        "type": "three_d_secure_redirect",
                        "stripe_js": f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent['id']}",
                        "source": new_id("src"),
                    },
                }
            self.store.put("payment_intent", intent)
            self.emit("payment_intent.requires_action", intent, req)
            return
        self._charge(intent, pm, card, req)

    def _outcome(self, card: TestCard, *, decline_code: str | None, blocked: bool) -> dict[str, Any]:
        if blocked:
            return {
                "advice_code": "do_not_try_again",
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "not_sent_to_network",
                "reason": "highest_risk_level",
                "risk_level": "highest",
                "risk_score": 95,
                "seller_message": "Stripe blocked this payment as too risky.",
                "type": "blocked",
            }
        if decline_code is not None:
            return {
                "advice_code": "try_again_later" if decline_code == "processing_error" else "do_not_try_again",
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "declined_by_network",
                "reason": decline_code,
                "risk_level": card.risk_level,
                "risk_score": 80 if card.risk_level == "highest" else 30,
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined",
            }
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": card.risk_level,
            "risk_score": 65 if card.risk_level == "elevated" else 20,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }

    def _charge(self, intent: dict[str, Any], pm: dict[str, Any], card: TestCard, req: ApiRequest | None) -> None:
        captured = intent["capture_method"] != "manual"
        charge = charge_object(
            new_id("ch"),
            self._now(),
            intent,
            pm,
            succeeded=True,
            captured=captured,
            outcome=self._outcome(card, decline_code=None, blocked=False),
        )
        if captured:
            book_charge(self.store, self._now(), charge, charge["amount_captured"])
        self.store.put("charge", charge)
        intent["latest_charge"] = charge["id"]
        intent["next_action"] = None
        if captured:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            intent["amount_capturable"] = 0
        else:
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
        self.store.put("payment_intent", intent)
        self.emit("charge.succeeded", charge, req)
        if captured:
            self.emit("payment_intent.succeeded", intent, req)
        else:
            self.emit("payment_intent.amount_capturable_updated", intent, req)

    def _decline(
        self,
        intent: dict[str, Any],
        pm: dict[str, Any],
        card: TestCard,
        decline_code: str,
        req: ApiRequest | None,
        *,
        blocked: bool = False,
        raise_error: bool = True,
    ) -> None:
        """Record a declined charge on ``intent`` and raise the 402 Stripe answers (unless ``raise_error``)."""
        code, message, param = decline_error_fields(decline_code)
        charge = charge_object(
            new_id("ch"),
            self._now(),
            intent,
            pm,
            succeeded=False,
            captured=False,
            outcome=self._outcome(card, decline_code=decline_code, blocked=blocked),
            failure_code=code,
            failure_message=message,
        )
        self.store.put("charge", charge)
        err = StripeError(
            402,
            "card_error",
            message,
            code=code,
            decline_code=decline_code,
            param=param,
            extra={
                "charge": charge["id"],
                "payment_method": snapshot(public(pm)),
                "payment_method_type": "card",
                "advice_code": charge["outcome"]["advice_code"],
            },
        )
        intent["status"] = "requires_payment_method"
        intent["latest_charge"] = charge["id"]
        intent["last_payment_error"] = err.error_object()
        intent["payment_method"] = None  # Stripe detaches a failed method from the intent
        intent["next_action"] = None
        self.store.put("payment_intent", intent)
        self.emit("charge.failed", charge, req)
        self.emit("payment_intent.payment_failed", intent, req)
        if raise_error:
            err.extra["payment_intent"] = snapshot(public(intent))
            raise err

    def authenticate(self, intent_id: str, result: str) -> dict[str, Any]:
        """Finish 3-D Secure for an intent in ``requires_action`` (``/_sim/payment_intents/{id}/authenticate``).

        ``succeeded`` charges the card (which may still decline after authentication); ``failed`` returns the
        intent to ``requires_payment_method`` with ``payment_intent_authentication_failure``.
        Raises StripeError (404 unknown intent, 400 wrong status or result).
        """
        intent = self._get("payment_intent", intent_id, label="payment_intent")
        if intent["status"] != "requires_action":
            raise state_error(
                f"The PaymentIntent has a status of {intent['status']}; only requires_action can be authenticated.",
                code="payment_intent_unexpected_state",
            )
        if result not in ("succeeded", "failed"):
            raise invalid_request("result is 'succeeded' or 'failed'", param="result")
        pm = self._get("payment_method", intent["payment_method"], label="PaymentMethod")
        card = self._test_card_of(pm)
        if result == "failed":
            intent["status"] = "requires_payment_method"
            intent["next_action"] = None
            intent["last_payment_error"] = {
                "type": "invalid_request_error",
                "code": "payment_intent_authentication_failure",
                "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
                "message": "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
                "or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
                "payment_method": snapshot(public(pm)),
            }
            intent["payment_method"] = None
            self.store.put("payment_intent", intent)
            self.emit("payment_intent.payment_failed", intent, None)
            return intent
        forced = self.faults.forced_decline(*self._pm_names(pm))
        if forced is not None or card.decline_code is not None:
            self._decline(intent, pm, card, forced or card.decline_code or "generic_decline", None, raise_error=False)
            return intent
        self._charge(intent, pm, card, None)
        return intent

    def capture_payment_intent(self, req: ApiRequest, id: str) -> dict[str, Any]:
        params = req.params
        check_params(
            params,
            COMMON
            | {"amount_to_capture", "metadata", "statement_descriptor", "statement_descriptor_suffix", "final_capture"},
        )
        intent = self._get("payment_intent", id, label="payment_intent")
        if intent["status"] != "requires_capture":
            raise state_error(
                f"This PaymentIntent could not be captured because it has a status of {intent['status']}. Only a "
                "PaymentIntent with one of the following statuses may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        amount = int_param(params, "amount_to_capture")
        if amount is None:
            amount = intent["amount_capturable"]
        if amount < 1 or amount > intent["amount_capturable"]:
            raise state_error(
                "The amount_to_capture must be a positive integer no greater than the amount capturable "
                f"({intent['amount_capturable']}).",
                code="amount_too_large",
                param="amount_to_capture",
            )
        currencies.check_amount_granularity(amount, intent["currency"], "amount_to_capture")
        charge = self._get("charge", intent["latest_charge"])
        charge.update(
            captured=True,
            amount_captured=amount,
            amount_refunded=charge["amount"] - amount,  # the uncaptured rest is released
        )
        book_charge(self.store, self._now(), charge, amount)
        self.store.put("charge", charge)
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        intent["metadata"] = metadata_param(params, intent["metadata"])
        self.store.put("payment_intent", intent)
        self.emit("charge.captured", charge, req)
        self.emit("payment_intent.succeeded", intent, req)
        return intent

    def cancel_payment_intent(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON | {"cancellation_reason"})
        reason = enum_param(req.params, "cancellation_reason", CANCELLATION_REASONS)
        intent = self._get("payment_intent", id, label="payment_intent")
        if intent["status"] not in CANCELABLE:
            raise state_error(
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
                "PaymentIntent with one of the following statuses may be canceled: " + ", ".join(CANCELABLE) + ".",
                code="payment_intent_unexpected_state",
            )
        if intent["status"] == "requires_capture" and intent["latest_charge"]:
            charge = self._get("charge", intent["latest_charge"])
            charge.update(amount_refunded=charge["amount"], refunded=True)  # the authorization is released
            self.store.put("charge", charge)
        intent.update(
            status="canceled",
            canceled_at=self._now(),
            cancellation_reason=reason,
            amount_capturable=0,
            next_action=None,
        )
        self.store.put("payment_intent", intent)
        self.emit("payment_intent.canceled", intent, req)
        return intent

    def list_payment_intents(self, req: ApiRequest) -> dict[str, Any]:
        customer = str_param(req.params, "customer")
        return self._list(
            "payment_intent",
            req,
            "/v1/payment_intents",
            (lambda p: p["customer"] == customer) if customer else None,
            ["customer"],
        )

    def search_payment_intents(self, req: ApiRequest) -> dict[str, Any]:
        return self._search(
            "payment_intent",
            req,
            "/v1/payment_intents/search",
            frozenset({"amount", "created", "currency", "customer", "status"}),
        )

    def retrieve_charge(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        return self._get("charge", id)

    def list_charges(self, req: ApiRequest) -> dict[str, Any]:
        customer = str_param(req.params, "customer")
        intent = str_param(req.params, "payment_intent")

        def keep(c: dict[str, Any]) -> bool:
            return (customer is None or c["customer"] == customer) and (intent is None or c["payment_intent"] == intent)

        return self._list("charge", req, "/v1/charges", keep, ["customer", "payment_intent"])
