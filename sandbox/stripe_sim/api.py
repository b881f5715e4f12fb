"""The ``/v1`` endpoints: Stripe's behaviour for the objects a payments engine uses.

:class:`StripeAPI` routes each request to a handler of one of the endpoint groups (``customers.py``,
``payment_methods.py``, ``payment_intents.py``, ``refunds.py``, ``events.py``).  A handler takes an
:class:`ApiRequest` and either returns the object to answer with (HTTP 200) or raises
:class:`~sandbox.stripe_sim.errors.StripeError`.  Handlers run under the store lock, one at a time, so the checks
that keep money right (a refund never exceeds what was captured; a PaymentIntent is charged once) are atomic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.stripe_sim.api_base import API_VERSION, ApiRequest
from sandbox.stripe_sim.balance import BalanceEndpoints
from sandbox.stripe_sim.clock import Clock
from sandbox.stripe_sim.customers import CustomerEndpoints
from sandbox.stripe_sim.errors import invalid_request
from sandbox.stripe_sim.events import EventEndpoints
from sandbox.stripe_sim.faults import Faults
from sandbox.stripe_sim.params import expand_paths
from sandbox.stripe_sim.payment_intents import PaymentIntentEndpoints
from sandbox.stripe_sim.payment_methods import PaymentMethodEndpoints
from sandbox.stripe_sim.refunds import RefundEndpoints
from sandbox.stripe_sim.store import Store, public
from sandbox.stripe_sim.webhooks import WebhookDispatcher

__all__ = ["API_VERSION", "ApiRequest", "StripeAPI"]

Handler = Callable[..., dict[str, Any]]


class StripeAPI(
    CustomerEndpoints, PaymentMethodEndpoints, PaymentIntentEndpoints, RefundEndpoints, BalanceEndpoints, EventEndpoints
):
    """Every supported ``/v1`` route, and the sandbox-only actions behind ``/_sim``."""

    def __init__(self, store: Store, faults: Faults, clock: Clock, dispatcher: WebhookDispatcher) -> None:
        super().__init__(store, faults, clock, dispatcher)
        r = self._route
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        r("POST", "/v1/customers", self.create_customer)
        r("GET", "/v1/customers", self.list_customers)
        r("GET", "/v1/customers/search", self.search_customers)
        r("GET", "/v1/customers/{id}", self.retrieve_customer)
        r("POST", "/v1/customers/{id}", self.update_customer)
        r("DELETE", "/v1/customers/{id}", self.delete_customer)
        r("GET", "/v1/customers/{id}/payment_methods", self.list_customer_payment_methods)
        r("POST", "/v1/payment_methods", self.create_payment_method)
        r("GET", "/v1/payment_methods/{id}", self.retrieve_payment_method)
        r("POST", "/v1/payment_methods/{id}/attach", self.attach_payment_method)
        r("POST", "/v1/payment_methods/{id}/detach", self.detach_payment_method)
        r("POST", "/v1/payment_intents", self.create_payment_intent)
        r("GET", "/v1/payment_intents", self.list_payment_intents)
        r("GET", "/v1/payment_intents/search", self.search_payment_intents)
        r("GET", "/v1/payment_intents/{id}", self.retrieve_payment_intent)
        r("POST", "/v1/payment_intents/{id}", self.update_payment_intent)
        r("POST", "/v1/payment_intents/{id}/confirm", self.confirm_payment_intent)
        r("POST", "/v1/payment_intents/{id}/capture", self.capture_payment_intent)
        r("POST", "/v1/payment_intents/{id}/cancel", self.cancel_payment_intent)
        r("GET", "/v1/charges", self.list_charges)
        r("GET", "/v1/charges/{id}", self.retrieve_charge)
        r("POST", "/v1/refunds", self.create_refund)
        r("GET", "/v1/refunds", self.list_refunds)
        r("GET", "/v1/refunds/{id}", self.retrieve_refund)
        r("POST", "/v1/refunds/{id}", self.update_refund)
        r("GET", "/v1/balance_transactions", self.list_balance_transactions)
        r("GET", "/v1/balance_transactions/{id}", self.retrieve_balance_transaction)
        r("GET", "/v1/disputes", self.list_disputes)
        r("GET", "/v1/disputes/{id}", self.retrieve_dispute)
        r("GET", "/v1/payouts", self.list_payouts)
        r("GET", "/v1/payouts/{id}", self.retrieve_payout)
        r("GET", "/v1/events", self.list_events)
        r("GET", "/v1/events/{id}", self.retrieve_event)
        r("POST", "/v1/webhook_endpoints", self.create_webhook_endpoint)
        r("GET", "/v1/webhook_endpoints", self.list_webhook_endpoints)
        r("GET", "/v1/webhook_endpoints/{id}", self.retrieve_webhook_endpoint)
        r("POST", "/v1/webhook_endpoints/{id}", self.update_webhook_endpoint)
        r("DELETE", "/v1/webhook_endpoints/{id}", self.delete_webhook_endpoint)

    def _route(self, method: str, template: str, handler: Handler) -> None:
        pattern = re.compile("^" + template.replace("{id}", "(?P<id>[^/]+)") + "$")
        self._routes.append((method, pattern, handler))

    def dispatch(self, req: ApiRequest) -> dict[str, Any]:
        """Run the handler for ``req`` and return the answer object (with ``expand`` applied).

        Raises StripeError: 404 for an unknown route, or whatever the handler raises.
        """
        for method, pattern, handler in self._routes:
            match = pattern.match(req.path)
            if match is None or method != req.method:
                continue
            result = handler(req, **match.groupdict())
            expand = expand_paths(req.params)
            out = public(result)
            return self._expand(out, expand) if expand else out
        # Stripe answers an unknown path, or a known path with another method, with this 404.
        raise invalid_request(
            f"Unrecognized request URL ({req.method}: {req.path}). Please see https://stripe.com/docs or we can "
            "help at https://support.stripe.com/.",
            status=404,
        )
