"""The engine's failure taxonomy, in one place (ARCHITECTURE.md, "Failure taxonomy").

::

    EngineError
    ├── TransientError          retry: in-process (tenacity) first, then by SQS visibility backoff
    │   └── DependencyDown      a circuit breaker is open: pause, burn no receive
    └── PoisonError             can never succeed: straight to the dead-letter queue

Business outcomes (card declined, fraud decline, refund exceeds captured) are not exceptions: a stage returns
them as a job status.  :func:`classify_stripe_error` is the one mapping from the Stripe SDK's errors to these.
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe


class EngineError(Exception):
    """Base of the engine's own errors."""


class TransientError(EngineError):
    """Worth retrying later: the dependency may answer differently next time."""

    def __init__(self, message: str, *, http_status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.request_id = request_id


class DependencyDown(TransientError):
    """A dependency is down as a whole (its circuit breaker is open)."""


class PoisonError(EngineError):
    """A message or job that can never succeed, whatever is retried."""


@dataclass(frozen=True)
class StripeFailure:
    """How the engine treats one Stripe error.

    ``kind``: ``business`` (a decline: the job fails), ``transient`` (retry), ``poison`` (our request is wrong:
    retrying cannot help).  ``outcome_unknown``: Stripe may have acted (5xx after the request reached it, or the
    connection broke after sending), so the charge stage must look the PaymentIntent up before creating another.
    ``dependency_wide``: counts toward opening the circuit breaker whatever the job.
    """

    kind: str
    outcome_unknown: bool = False
    dependency_wide: bool = False


#: The v1 API's error classes the engine meets, each with its treatment.  Subclasses inherit it.
MAPPED_STRIPE_ERRORS: tuple[type[stripe.StripeError], ...] = (
    stripe.CardError,
    stripe.RateLimitError,
    stripe.APIConnectionError,
    stripe.IdempotencyError,
    stripe.AuthenticationError,
    stripe.PermissionError,
    stripe.InvalidRequestError,
    stripe.SignatureVerificationError,
    stripe.APIError,
)


def classify_stripe_error(exc: stripe.StripeError) -> StripeFailure:
    """The treatment of a Stripe SDK error.  Every SDK error class maps (tests/unit/test_errors.py checks).

    Classes outside :data:`MAPPED_STRIPE_ERRORS` belong to v2 APIs the engine never calls (payouts, financial
    accounts, …): if one ever appears, the request itself is wrong for this engine, so it is poison.
    """
    if isinstance(exc, stripe.CardError):
        return StripeFailure("business")
    if isinstance(exc, stripe.RateLimitError):
        return StripeFailure("transient")
    if isinstance(exc, stripe.APIConnectionError):
        return StripeFailure("transient", outcome_unknown=True, dependency_wide=True)
    if isinstance(exc, stripe.IdempotencyError):
        # Same key, other parameters: a bug in how we derive keys, never fixed by retrying.
        return StripeFailure("poison")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        # A bad or revoked key affects every job: hold everything until an operator fixes it.
        return StripeFailure("transient", dependency_wide=True)
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 409:  # a concurrent request with the same key: try again shortly
            return StripeFailure("transient")
        return StripeFailure("poison")
    if isinstance(exc, stripe.SignatureVerificationError):
        return StripeFailure("poison")
    if isinstance(exc, stripe.APIError):
        status = exc.http_status or 500
        return StripeFailure("transient", outcome_unknown=status >= 500)
    if type(exc) in (stripe.StripeError,) or exc.http_status is None:
        # A bare StripeError: the SDK could not say what happened.
        return StripeFailure("transient", outcome_unknown=True)
    return StripeFailure("poison")
