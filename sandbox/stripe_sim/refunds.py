"""Refunds: never more than was captured, as Stripe enforces."""

from __future__ import annotations

from typing import Any

from sandbox.stripe_sim import currencies
from sandbox.stripe_sim.api_base import ApiBase, ApiRequest
from sandbox.stripe_sim.balance import book_refund, new_balance_txn
from sandbox.stripe_sim.errors import api_error, invalid_request, state_error
from sandbox.stripe_sim.objects import new_id
from sandbox.stripe_sim.params import COMMON, check_params, enum_param, int_param, metadata_param, str_param

REFUND_CREATE_PARAMS = COMMON | {
    "amount",
    "charge",
    "currency",
    "customer",
    "instructions_email",
    "metadata",
    "origin",
    "payment_intent",
    "reason",
    "refund_application_fee",
    "reverse_transfer",
}

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class RefundEndpoints(ApiBase):
    """Refunds: never more than was captured, as Stripe enforces."""

    def create_refund(self, req: ApiRequest) -> dict[str, Any]:
        params = req.params
        check_params(params, REFUND_CREATE_PARAMS)
        intent_id = str_param(params, "payment_intent")
        charge_id = str_param(params, "charge")
        if intent_id is None and charge_id is None:
            raise invalid_request(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        amount = int_param(params, "amount")
        if amount is not None and amount < 1:
            raise invalid_request("Invalid positive integer", param="amount", code="parameter_invalid_integer")
        reason = enum_param(params, "reason", REFUND_REASONS)
        metadata = metadata_param(params)
        if intent_id is not None:
            intent = self._get("payment_intent", intent_id, "payment_intent", "payment_intent")
            if charge_id is not None and intent["latest_charge"] != charge_id:
                raise invalid_request(
                    f"The charge {charge_id} does not belong to PaymentIntent {intent_id}.", param="charge"
                )
            charge_id = intent["latest_charge"]
            if intent["status"] != "succeeded" or charge_id is None:
                raise state_error(
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                    param="payment_intent",
                )
        assert charge_id is not None
        charge = self._get("charge", charge_id, "charge")
        pm = self.store.get("payment_method", charge["payment_method"])
        if pm is not None and self.faults.fails(*self._pm_names(pm)):
            raise api_error(saved=True)
        if charge["status"] != "succeeded" or not charge["captured"]:
            raise state_error(
                f"Charge {charge_id} has not been captured and cannot be refunded.",
                code="charge_not_refundable",
                param="charge",
            )
        currency = charge["currency"]
        if "currency" in params and currencies.normalize_currency(params["currency"]) != currency:
            raise invalid_request("The currency of a refund must be the currency of its charge.", param="currency")
        refundable = charge["amount_captured"] - charge["_sim"].get("refunded_by_refunds", 0)
        if refundable <= 0:
            raise state_error(f"Charge {charge_id} has already been refunded.", code="charge_already_refunded")
        if amount is None:
            amount = refundable
        if amount > refundable:
            raise state_error(
                f"Refund amount ({currencies.format_amount(amount, currency)}) is greater than unrefunded amount on "
                f"charge ({currencies.format_amount(refundable, currency)})",
                code="amount_too_large",
                param="amount",
            )
        currencies.check_amount_granularity(amount, currency)
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,  # set below
            "charge": charge_id,
            "created": self._now(),
            "currency": currency,
            "destination_details": {
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": metadata,
            "payment_intent": charge["payment_intent"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "pending" if self.faults.knobs.pending_refunds else "succeeded",
            "transfer_reversal": None,
        }
        book_refund(self.store, self._now(), refund)
        self.store.put("refund", refund)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["_sim"]["refunded_by_refunds"] = charge["_sim"].get("refunded_by_refunds", 0) + amount
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["_sim"]["refunded_by_refunds"] >= charge["amount_captured"]
        self.store.put("charge", charge)
        self.emit("refund.created", refund, req)
        self.emit("charge.refunded", charge, req, previous)
        return refund

    def settle_refund(self, refund_id: str, result: str) -> dict[str, Any]:
        """Settle a ``pending`` refund (``POST /_sim/refunds/{id}/settle``), as the card network eventually does.

        ``succeeded`` completes it; ``failed`` gives the money back to the merchant's charge (the amount becomes
        refundable again) with ``failure_reason``.  Emits ``refund.updated`` and ``charge.refund.updated``, and
        ``refund.failed`` for a failure.  Raises StripeError (404 unknown refund, 400 not pending or bad result).
        """
        refund = self._get("refund", refund_id, "refund")
        if result not in ("succeeded", "failed"):
            raise invalid_request("result is 'succeeded' or 'failed'", param="result")
        if refund["status"] != "pending":
            raise state_error(
                f"Refund {refund_id} is {refund['status']}; only a pending refund settles.", code="refund_not_pending"
            )
        previous = {"status": "pending"}
        refund["status"] = result
        if result == "failed":
            refund["failure_reason"] = "expired_or_canceled_card"
            back = new_balance_txn(
                self.store, self._now(), refund["amount"], refund["currency"], "refund_failure", refund["id"]
            )
            refund["failure_balance_transaction"] = back["id"]
            charge = self._get("charge", refund["charge"], "charge")
            charge["_sim"]["refunded_by_refunds"] = charge["_sim"].get("refunded_by_refunds", 0) - refund["amount"]
            charge["amount_refunded"] -= refund["amount"]
            charge["refunded"] = charge["_sim"]["refunded_by_refunds"] >= charge["amount_captured"]
            self.store.put("charge", charge)
        self.store.put("refund", refund)
        self.emit("refund.updated", refund, None, previous)
        self.emit("charge.refund.updated", refund, None, previous)
        if result == "failed":
            self.emit("refund.failed", refund, None, previous)
        return refund

    def retrieve_refund(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        return self._get("refund", id)

    def update_refund(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON | {"metadata"})
        refund = self._get("refund", id)
        refund["metadata"] = metadata_param(req.params, refund["metadata"])
        self.store.put("refund", refund)
        self.emit("refund.updated", refund, req)
        return refund

    def list_refunds(self, req: ApiRequest) -> dict[str, Any]:
        intent = str_param(req.params, "payment_intent")
        charge = str_param(req.params, "charge")

        def keep(r: dict[str, Any]) -> bool:
            return (intent is None or r["payment_intent"] == intent) and (charge is None or r["charge"] == charge)

        return self._list("refund", req, "/v1/refunds", keep, ["payment_intent", "charge"])
