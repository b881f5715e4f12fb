"""Errors the sandbox answers with, in Stripe's wire shape.

Every failure of a ``/v1`` request is a :class:`StripeError` carrying what Stripe would send: the HTTP status, the
``error`` object (``type``, ``code``, ``decline_code``, ``message``, ``param``, ``doc_url`` …) and extra headers.
``saved`` says whether Stripe would store the answer under the request's idempotency key: an answer is saved only
when the endpoint began executing (card declines, state conflicts, 500s made inside an endpoint), never for
parameter validation (Stripe: "no idempotent result is saved because no API endpoint began execution").
"""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An API error in Stripe's shape.

    ``status`` is the HTTP status; ``body()`` the JSON body ``{"error": {...}}``.
    """

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        saved: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}
        self.saved = saved

    def error_object(self) -> dict[str, Any]:
        """The ``error`` member of the body (also used as a PaymentIntent's ``last_payment_error``)."""
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
            err["doc_url"] = DOC_BASE + self.code.replace("_", "-")
        if self.decline_code is not None:
            err["decline_code"] = self.decline_code
        if self.param is not None:
            err["param"] = self.param
        err.update(self.extra)
        return err

    def body(self) -> dict[str, Any]:
        """The whole JSON body Stripe answers with."""
        return {"error": self.error_object()}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    """A parameter validation error (400 ``invalid_request_error``), not saved under idempotency keys."""
    return StripeError(status, "invalid_request_error", message, code=code, param=param, saved=False)


def missing_param(param: str) -> StripeError:
    """Stripe's answer to a missing required parameter."""
    return invalid_request(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    """Stripe's answer to a parameter the endpoint does not take."""
    return invalid_request(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def resource_missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    """``No such payment_intent: 'pi_…'``: 404 for the object the URL names (param ``id``), 400 for one named by
    another parameter (``customer=cus_missing``), as Stripe answers."""
    status = 404 if param == "id" else 400
    return invalid_request(f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=status)


def state_error(message: str, *, code: str, param: str | None = None) -> StripeError:
    """A 400 raised by an endpoint that looked at an object's state; saved under the idempotency key."""
    return StripeError(400, "invalid_request_error", message, code=code, param=param, saved=True)


def api_error(message: str = "An unknown error occurred", *, saved: bool) -> StripeError:
    """A 500 ``api_error``.  ``saved`` tells whether the endpoint had begun (then Stripe replays it)."""
    # Stripe replays a saved 500 for the key, so it tells clients a retry with the same key is useless.
    headers = {"Stripe-Should-Retry": "false"} if saved else {}
    return StripeError(500, "api_error", message, headers=headers, saved=saved)
