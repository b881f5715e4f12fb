"""Customers: create, retrieve, update, delete, list and search."""

from __future__ import annotations

from typing import Any

from sandbox.stripe_sim.api_base import ApiBase, ApiRequest
from sandbox.stripe_sim.errors import StripeError, api_error, invalid_request, resource_missing
from sandbox.stripe_sim.objects import customer_object, new_id, snapshot
from sandbox.stripe_sim.params import (
    COMMON,
    check_params,
    enum_param,
    int_param,
    metadata_param,
    str_list_param,
    str_param,
)

CUSTOMER_PARAMS = COMMON | {
    "address",
    "balance",
    "cash_balance",
    "coupon",
    "description",
    "email",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "payment_method",
    "phone",
    "preferred_locales",
    "promotion_code",
    "shipping",
    "source",
    "tax",
    "tax_exempt",
    "tax_id_data",
    "test_clock",
    "default_source",
}


class CustomerEndpoints(ApiBase):
    """Customers: create, retrieve, update, delete, list and search."""

    def _apply_customer_params(self, customer: dict[str, Any], params: dict[str, Any]) -> None:
        for name in ("email", "name", "description", "phone", "invoice_prefix"):
            if name in params:
                customer[name] = str_param(params, name)
        if "address" in params:
            address = params["address"]
            customer["address"] = (
                {k: address.get(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}
                if isinstance(address, dict)
                else None
            )
        if "preferred_locales" in params:
            customer["preferred_locales"] = str_list_param(params, "preferred_locales") or []
        if "tax_exempt" in params:
            customer["tax_exempt"] = enum_param(params, "tax_exempt", ("none", "exempt", "reverse")) or "none"
        if "balance" in params:
            customer["balance"] = int_param(params, "balance") or 0
        customer["metadata"] = metadata_param(params, customer["metadata"])
        settings = params.get("invoice_settings")
        if isinstance(settings, dict) and "default_payment_method" in settings:
            pm_ref = settings["default_payment_method"] or None
            if pm_ref is not None:
                pm = self._get("payment_method", pm_ref, "invoice_settings[default_payment_method]", "PaymentMethod")
                if pm["customer"] != customer["id"]:
                    raise invalid_request(
                        f"The customer does not have a payment method with the ID {pm_ref}. The payment method must "
                        "be attached to the customer.",
                        param="invoice_settings[default_payment_method]",
                        code="resource_missing",
                    )
            customer["invoice_settings"]["default_payment_method"] = pm_ref

    def create_customer(self, req: ApiRequest) -> dict[str, Any]:
        params = req.params
        check_params(params, CUSTOMER_PARAMS)
        customer = customer_object(new_id("cus", 14), self._now())
        pm_ref = str_param(params, "payment_method")
        if pm_ref is not None and self.faults.fails(pm_ref):
            raise api_error(saved=True)
        pm = self._materialize(pm_ref, "payment_method") if pm_ref is not None else None
        previous_owner = pm["customer"] if pm is not None else None
        if pm is not None:
            # Attached first, so invoice_settings[default_payment_method] may name it.
            pm["customer"] = customer["id"]
        settings = params.get("invoice_settings")
        if pm is not None and isinstance(settings, dict) and settings.get("default_payment_method") == pm_ref:
            # Stripe's own examples pass the same test token twice; it means the method just attached.
            params = {**params, "invoice_settings": {**settings, "default_payment_method": pm["id"]}}
        try:
            self._apply_customer_params(customer, params)
        except StripeError:
            if pm is not None:
                pm["customer"] = previous_owner
            raise
        self.store.put("customer", customer)
        if pm is not None:
            self.store.put("payment_method", pm)
            self.emit("payment_method.attached", pm, req)
        self.emit("customer.created", customer, req)
        return customer

    def retrieve_customer(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        customer = self.store.get("customer", id)
        if customer is None:
            raise resource_missing("customer", id)
        return customer  # a deleted customer is returned as {id, object, deleted: true}, as on Stripe

    def update_customer(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, CUSTOMER_PARAMS - {"payment_method"})
        customer = self._get("customer", id)
        before = snapshot(customer)
        draft = snapshot(customer)
        self._apply_customer_params(draft, req.params)  # raises before anything changes
        customer.update(draft)
        self.store.put("customer", customer)
        changed = {k: before[k] for k in before if before[k] != customer.get(k) and k != "_sim"}
        if changed:
            self.emit("customer.updated", customer, req, changed)
        return customer

    def delete_customer(self, req: ApiRequest, id: str) -> dict[str, Any]:
        customer = self._get("customer", id)
        tombstone = {"id": id, "object": "customer", "deleted": True, "_sim": customer.get("_sim", {})}
        self.store.put("customer", tombstone)
        self.emit("customer.deleted", customer, req)  # the event shows the customer as it was
        return {"id": id, "object": "customer", "deleted": True}

    def list_customers(self, req: ApiRequest) -> dict[str, Any]:
        email = str_param(req.params, "email")
        return self._list(
            "customer", req, "/v1/customers", (lambda c: c.get("email") == email) if email else None, ["email"]
        )

    def search_customers(self, req: ApiRequest) -> dict[str, Any]:
        return self._search("customer", req, "/v1/customers/search", frozenset({"email", "name", "phone", "created"}))

    def list_customer_payment_methods(self, req: ApiRequest, id: str) -> dict[str, Any]:
        self._get("customer", id)
        return self._list(
            "payment_method",
            req,
            f"/v1/customers/{id}/payment_methods",
            lambda p: p["customer"] == id,
            ["type", "allow_redisplay"],
        )
