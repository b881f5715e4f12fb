"""Every Stripe SDK error class has a treatment; business outcomes are never retried."""

from __future__ import annotations

import inspect

import pytest
import stripe

from engine.errors import MAPPED_STRIPE_ERRORS, classify_stripe_error


def _all_stripe_error_classes() -> list[type[stripe.StripeError]]:
    import stripe._error as sdk_errors  # the module that defines them (``stripe`` loads names lazily)

    found = {
        obj for _, obj in inspect.getmembers(sdk_errors) if inspect.isclass(obj) and issubclass(obj, stripe.StripeError)
    }
    return sorted(found, key=lambda c: c.__name__)


def _make(cls: type[stripe.StripeError], status: int | None = None) -> stripe.StripeError:
    if cls is stripe.CardError:
        return cls("declined", "payment_method", "card_declined", http_status=402)
    if cls is stripe.SignatureVerificationError:
        return cls("bad signature", "sig")
    if issubclass(cls, stripe.InvalidRequestError):
        return cls("bad", "param", http_status=status or 400)
    return cls("boom", http_status=status)


def test_every_sdk_error_class_is_mapped() -> None:
    classes = _all_stripe_error_classes()
    assert len(classes) > 10 and stripe.CardError in classes
    bases = (stripe.StripeError, stripe._error.StripeErrorWithParamCode)
    for cls in classes:
        if cls in bases:
            continue
        explicit = any(issubclass(cls, mapped) for mapped in MAPPED_STRIPE_ERRORS)
        failure = classify_stripe_error(_make(cls, 400))
        # v1 errors have their own treatment; v2-only errors (never called by the engine) are poison, not retried.
        assert explicit or failure.kind == "poison", cls


@pytest.mark.parametrize(
    ("error", "kind", "unknown", "wide"),
    [
        (lambda: _make(stripe.CardError), "business", False, False),
        (lambda: _make(stripe.RateLimitError, 429), "transient", False, False),
        (lambda: _make(stripe.APIError, 500), "transient", True, False),
        (lambda: _make(stripe.APIConnectionError), "transient", True, True),
        (lambda: _make(stripe.AuthenticationError, 401), "transient", False, True),
        (lambda: _make(stripe.IdempotencyError, 400), "poison", False, False),
        (lambda: _make(stripe.InvalidRequestError, 400), "poison", False, False),
        (lambda: _make(stripe.InvalidRequestError, 409), "transient", False, False),
    ],
)
def test_treatments(error, kind, unknown, wide) -> None:  # type: ignore[no-untyped-def]
    failure = classify_stripe_error(error())
    assert (failure.kind, failure.outcome_unknown, failure.dependency_wide) == (kind, unknown, wide)


def test_in_process_retry_honours_stripe_should_retry() -> None:
    from engine.jobs.stripe_effect import safe_to_repeat_now as _retry_in_process

    assert _retry_in_process(
        stripe.RateLimitError("slow down", http_status=429, headers={"Stripe-Should-Retry": "true"})
    )
    assert not _retry_in_process(
        stripe.RateLimitError("slow down", http_status=429, headers={"Stripe-Should-Retry": "false"})
    )
    assert not _retry_in_process(stripe.APIError("boom", http_status=500))
