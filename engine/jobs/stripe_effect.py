"""What every stage whose external effect is a Stripe call shares (the charge and the refund stages).

* **The breaker first.** While the Stripe circuit breaker is open the stage waits (at most
  :data:`BREAKER_WAIT_SECONDS`) and then gives the message back with :class:`DependencyDown`, which counts no
  attempt of the job (:mod:`engine.jobs.attempts`).  Half-open, the gateway lets exactly one call out (the probe):
  any further call of the stage raises :class:`DependencyDown` unless the probe closed the breaker.
* **Stripe down is not the job's failure.** A failure that affects every job (a connection error, a bad key) or
  that leaves the breaker open is raised as :class:`DependencyDown`, after the progress note is written.
* **Generations of the idempotency key.** Stripe saves the answer of any request that reached it under its key,
  500s included.  After a timeout or a dropped connection the stage repeats the same key (a replay, or a 409 while
  Stripe is still processing the first request); a stage moves to the next generation (``{job_id}:{stage}:g{n}``)
  only when Stripe :func:`replayed` a saved 5xx under the old key and a lookup finds no object.  The generation
  travels in the job's progress note (``stage_results["{stage}_progress"]``), committed on failure paths only and
  fenced on the job's stage.
* **In-process retries** (:data:`retry_in_process`) for what is safe to repeat at once with the same key.
* **Failures classified once** (:meth:`StripeEffect.failed`): poison (our request is wrong) or transient, noting
  an unknown outcome first so the next delivery looks before it creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import sqlalchemy as sa
import stripe
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

from engine.adapters.stripe_gateway import StripeGateway
from engine.db import jobs as job_repo
from engine.errors import DependencyDown, KeyStillInFlight, PoisonError, TransientError, classify_stripe_error
from engine.jobs.job import Job

#: How long a worker thread holds a job while the Stripe breaker is open before giving the message back: short,
#: since the consumer stops taking Stripe work while the breaker is open and a held message blocks its group.
BREAKER_WAIT_SECONDS = 1.0


def safe_to_repeat_now(exc: BaseException) -> bool:
    """Safe to repeat with the same key at once: rate limited, or refused before Stripe saw the request —
    unless Stripe answered ``Stripe-Should-Retry: false``."""
    if isinstance(exc, stripe.StripeError):
        headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
        if headers.get("stripe-should-retry") == "false":
            return False
    if isinstance(exc, stripe.RateLimitError):
        return True
    # 409: a concurrent request with this key is still in flight at Stripe (the SDK raises it as an APIError).
    return isinstance(exc, stripe.StripeError) and exc.http_status == 409


def replayed(exc: stripe.StripeError) -> bool:
    """True when Stripe answered with a response it had saved under the idempotency key (``Idempotent-Replayed``):
    the outcome of the key's first request, which repeating the key can never change."""
    headers = {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}
    return headers.get("idempotent-replayed") == "true"


#: How long a message whose key is still in flight at Stripe waits before it comes back (plus jitter).
KEY_IN_FLIGHT_RETRY_SECONDS = 2.0

#: Wraps a gateway call: up to four tries, jittered, for the errors :func:`safe_to_repeat_now` accepts.
retry_in_process = retry(
    retry=retry_if_exception(safe_to_repeat_now),
    wait=wait_random_exponential(multiplier=0.2, max=2.0),
    stop=stop_after_attempt(4),
    reraise=True,
)


@dataclass(frozen=True)
class Progress:
    """A job's progress note for one Stripe effect: the key generation, the object id if one was seen, and
    whether an earlier call's outcome is unknown."""

    generation: int
    object_id: str | None
    uncertain: bool


@dataclass
class StripeEffect:
    """The bookkeeping around one stage's Stripe call.

    ``progress_key`` is the note's key in ``stage_results`` (``charge_progress``); ``object_key`` names the Stripe
    object's id in it (``payment_intent``, ``refund``); ``what`` is how a poison error names the call.
    """

    gateway: StripeGateway
    db: sa.Engine
    progress_key: str
    object_key: str
    what: str
    breaker_wait_seconds: float = BREAKER_WAIT_SECONDS

    def begin(self, job: Job) -> Progress:
        """Wait for the breaker to leave ``open`` (claiming nothing: the gateway's first call is the probe), then
        the job's progress so far.  Raises :class:`DependencyDown` when the breaker stays open."""
        breaker = self.gateway.breaker
        if not breaker.wait_until_not_open(self.breaker_wait_seconds):
            raise DependencyDown("Stripe circuit breaker is open", retry_after=breaker.seconds_until_probe())
        progress: dict[str, Any] = dict(job.stage_results.get(self.progress_key) or {})
        return Progress(
            generation=int(progress.get("generation", 1)),
            object_id=progress.get(self.object_key),
            uncertain=bool(progress.get("uncertain")),
        )

    def note(self, job_id: str, value: dict[str, Any], *, expected_stage: Any = job_repo.ANY) -> None:
        """Commit ``value`` as the job's progress note at once (failure paths only: a checkpoint carries the rest).

        Raises :class:`engine.db.jobs.StaleCopy` when ``expected_stage`` is given and the job moved on.
        """
        with self.db.begin() as conn:
            job_repo.note(conn, job_id, self.progress_key, value, expected_stage=expected_stage)

    def failed(self, job: Job, exc: stripe.StripeError, generation: int) -> NoReturn:
        """Turn a Stripe error that is not a business outcome into the failure taxonomy.

        Raises :class:`PoisonError` when retrying cannot help, else :class:`TransientError` — after noting the
        generation as uncertain when Stripe may have acted.  The transient error is a :class:`DependencyDown`
        (no attempt of the job spent) when the failure is Stripe's as a whole: dependency-wide, or the breaker is
        not closed after it.
        """
        failure = classify_stripe_error(exc)
        if failure.kind == "poison":
            raise PoisonError(f"Stripe refused the {self.what}: {exc.user_message or exc}") from exc
        if failure.outcome_unknown:
            self.note(job.id, {"generation": generation, "uncertain": True}, expected_stage=job.stage)
        breaker = self.gateway.breaker
        if failure.dependency_wide or breaker.state != breaker.CLOSED:
            raise DependencyDown(
                f"Stripe down: {type(exc).__name__}: {exc.user_message or exc}",
                retry_after=breaker.seconds_until_probe(),
                http_status=exc.http_status,
                request_id=exc.request_id,
            ) from exc
        if exc.http_status == 409:
            raise KeyStillInFlight(
                f"Stripe is still processing an earlier request with this key: {exc.user_message or exc}",
                retry_after=KEY_IN_FLIGHT_RETRY_SECONDS,
                http_status=exc.http_status,
                request_id=exc.request_id,
            ) from exc
        raise TransientError(
            f"Stripe {type(exc).__name__}: {exc.user_message or exc}",
            http_status=exc.http_status,
            request_id=exc.request_id,
        ) from exc
