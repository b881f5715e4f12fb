"""The engine's errors: one root, :class:`PaymentsError`, and the failure taxonomy under it (``docs/design.md``,
"Failure taxonomy").

Every exception the engine, its pipelines, its CLI and its local stack define derives from :class:`PaymentsError`
(tests/unit/test_error_tree.py checks), so a caller can catch "anything the engine raised on purpose" in one
clause, as with stripe-python's ``StripeError``.  Errors about bad input also derive from :class:`ValueError`, and
"no such thing" errors from :class:`LookupError`, so code that catches those keeps working.

::

    PaymentsError
    ├── TransientError              retry: in-process (tenacity) first, then by SQS visibility backoff
    │   ├── DependencyDown          the dependency is down: pause, count no attempt of the job
    │   ├── RateLimitWaitExceeded   no Stripe rate-limit token in time (engine.adapters.stripe_rate_limit)
    │   ├── FetchError              the ECB rates file could not be fetched (engine.ops.rates_fetch)
    │   └── Superseded              another run of a report job settled it first (pipelines.report.generate)
    ├── PoisonError                 can never succeed: straight to the dead-letter queue
    │   └── PoisonMessage           a received message no actor can run (engine.broker.errors)
    ├── InvalidInput (ValueError)   a request, file or configuration the engine cannot use
    │   ├── UnknownCurrency, AmountNotChargeable            engine.domain.money
    │   ├── UnbalancedTransaction                           engine.domain.ledger
    │   ├── VatError: VatDataError, VatRateUnavailable, VatIdCountryMismatch    engine.domain.vat
    │   ├── InvalidRate                                     engine.domain.conversion
    │   ├── EcbFileError                                    engine.domain.ecb_files
    │   ├── RatesConflict                                   engine.db.rates
    │   ├── PeriodError, ReportRequestError                 engine.reports
    │   ├── FraudRulesError                                 engine.domain.fraud
    │   ├── PlanCatalogueError                              engine.domain.plans
    │   ├── InvalidHeader, InvalidBatch, PanDetected        pipelines.settlement
    │   └── OutputMismatch: a stored stage output of another shape   engine.jobs.output
    ├── NotFoundError (LookupError) asked for by id, and nothing has it
    │   ├── JobNotFound                                     engine.db.jobs
    │   ├── UnknownPlan                                     engine.domain.plans
    │   ├── DeadLetterNotFound                              engine.ops.dlq.show
    │   ├── StageNotRun: a stage's output asked for before it ran   engine.jobs.output
    │   └── RateMissing (no ECB rate for a currency and day)  engine.domain.conversion
    ├── BrokerError                 engine.broker.errors: BatchSendError, DeadLetterRequested, HeldBehindFailure
    ├── ApiError                    an HTTP error answer (engine.ingest.errors)
    ├── AuthError                   a token the engine refuses (engine.adapters.auth)
    ├── SignatureRefused            a Stripe webhook delivery not signed by us (pipelines.webhook.routes)
    ├── UnknownDependency (TypeError)  a factory names what the container does not provide (engine.runtime.container)
    ├── NotInReview                 a review decision for a job not in review (engine.ops.review)
    ├── PaymentNotRefundable        a refund names a job that is no captured payment (pipelines.refund.request)
    ├── EffectConflict              one effect booked twice with other postings (engine.db.ledger)
    ├── NothingRunningError         no stack is running and nothing external is configured (engine.runtime.endpoints)
    └── StackError, ProcessFailed, EmbeddedPostgresError, EmbeddedRedisError, LocalAwsError,       sandbox/
        UnsupportedMotoVersion

Business outcomes (card declined, fraud decline, refund exceeds captured) are not exceptions: a stage returns
them as a job status.  :func:`classify_stripe_error` is the one mapping from the Stripe SDK's errors to these.
The Stripe sandbox's own errors (``sandbox/stripe_sim``) stand for Stripe's, not the engine's, and stay outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe


class PaymentsError(Exception):
    """Base of every error the engine defines."""


class TransientError(PaymentsError):
    """Worth retrying later: the dependency may answer differently next time."""

    def __init__(self, message: str, *, http_status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.request_id = request_id


class DependencyDown(TransientError):
    """A dependency is down as a whole (its circuit breaker is open, or a call failed in a way that affects every
    job): not the job's failure.  The actor gives the message back without counting an attempt
    (:mod:`engine.jobs.attempts`); ``retry_after`` is when trying again makes sense, in seconds (None: unknown).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, request_id=request_id)
        self.retry_after = retry_after


class KeyStillInFlight(DependencyDown):
    """Stripe is still processing an earlier request under this job's idempotency key (409 after the in-process
    retries).  Its outcome is known shortly and is not the job's failure: as for a dependency that is down, the
    message comes back after ``retry_after`` without spending one of the job's attempts."""


class PoisonError(PaymentsError):
    """A message or job that can never succeed, whatever is retried."""


class InvalidInput(PaymentsError, ValueError):
    """Input the engine cannot use: a request, an uploaded file, a data or configuration file."""


class NotFoundError(PaymentsError, LookupError):
    """Something asked for by its id does not exist."""


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
