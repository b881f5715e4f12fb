"""The Stripe adapter: the official SDK, pointed at api.stripe.com or any Stripe-compatible server (the sandbox).

Only what the pipelines need, with deterministic idempotency keys supplied by the caller.  Network retries inside
the SDK reuse the same idempotency key (safe); anything else is the caller's decision (engine/errors.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import redis
import stripe

from engine.adapters.circuit_breaker import CircuitBreaker
from engine.adapters.stripe_rate_limit import RateLimitWaitExceeded, StripeRateLimiter
from engine.domain.merchant import DEFAULT_MERCHANT, customer_ref
from engine.domain.pan import find_pan
from engine.errors import DependencyDown, PoisonError, classify_stripe_error
from engine.runtime import metrics

log = logging.getLogger(__name__)

#: Card countries remembered per process (oldest forgotten first).
CARD_COUNTRIES_REMEMBERED = 4096
#: Balance transactions seen expanded on a confirmed intent and not read yet (oldest forgotten first).
FEES_REMEMBERED = 4096
#: What a create-and-confirm asks Stripe to expand: the charge's balance transaction carries the fee the ledger
#: books, so the ledger needs no GET of its own (:meth:`StripeGateway.seen_balance_transaction`).
CONFIRM_EXPAND = ["latest_charge.balance_transaction"]


class StripeGateway:
    """Thread-safe; make one per process."""

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        *,
        max_network_retries: int = 2,
        timeout_seconds: float = 30.0,
        breaker: CircuitBreaker | None = None,
        redis_client: redis.Redis | None = None,
        redis_prefix: str = "",
        rate_limiter: StripeRateLimiter | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"api_key": api_key, "max_network_retries": max_network_retries}
        if api_base:
            kwargs["base_addresses"] = {"api": api_base}
        # A pooled session per gateway (keep-alive to Stripe) with the configured timeout.
        kwargs["http_client"] = stripe.RequestsClient(timeout=timeout_seconds)
        self.client = stripe.StripeClient(**kwargs)
        self.breaker = breaker or CircuitBreaker(
            "stripe", on_change=lambda _old, new: metrics.CIRCUIT_OPEN.labels("stripe").set(1 if new == "open" else 0)
        )
        self._redis = redis_client
        self._prefix = redis_prefix
        self.rate_limiter = rate_limiter
        self._customers: dict[str, str] = {}
        self._card_countries: dict[str, str | None] = {}
        self._balance_transactions: dict[str, Any] = {}
        self._probing = False
        self._lock = threading.Lock()

    # -- calls that go through the breaker --------------------------------------------------------------------
    def call(self, job_id: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` and feed the outcome to the circuit breaker and the metrics.  Re-raises the SDK's exception.

        Raises :class:`DependencyDown` without calling when the breaker refuses: open, or half-open with its one
        probe already out (so a stage that makes several calls makes only the first while Stripe is probed).  The
        probe is one HTTP request: the SDK's network retries are off for it.  With a ``rate_limiter`` the call first
        waits for a token of the account's and the operation's shared buckets (:class:`DependencyDown` when none
        comes within its wait).
        """
        operation = _operation(fn)
        if self.rate_limiter is not None and self.breaker.admits() != "none":
            # Stripe's limits across the fleet (a shared bucket); no token is spent while the breaker refuses.
            try:
                self.rate_limiter.acquire(operation)
            except RateLimitWaitExceeded as exc:
                raise DependencyDown(f"Stripe rate limit: {exc}", retry_after=1.0) from exc
        grant = self.breaker.claim()
        if grant is None:
            raise DependencyDown(
                f"Stripe circuit breaker is {self.breaker.state}: {operation} not called",
                retry_after=self.breaker.seconds_until_probe(),
            )
        if grant == "probe":
            kwargs["options"] = {**(kwargs.get("options") or {}), "max_network_retries": 0}
        started = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except stripe.StripeError as exc:
            metrics.STRIPE_SECONDS.labels(operation).observe(time.perf_counter() - started)
            metrics.STRIPE_REQUESTS.labels(operation, _outcome(exc)).inc()
            failure = classify_stripe_error(exc)
            if failure.kind == "transient":
                self.breaker.record_failure(
                    job_id,
                    dependency_wide=failure.dependency_wide,
                    server_error=bool(exc.http_status and exc.http_status >= 500),
                )
            else:
                self.breaker.record_success()  # Stripe answered sensibly: it is up.
            raise
        except BaseException:
            self.breaker.release_probe()  # not a Stripe answer: says nothing about Stripe; let another probe
            raise
        metrics.STRIPE_SECONDS.labels(operation).observe(time.perf_counter() - started)
        metrics.STRIPE_REQUESTS.labels(operation, "ok").inc()
        self.breaker.record_success()
        return result

    def work_gate(self) -> str:
        """For a consumer of work that calls Stripe (:data:`engine.broker.consumer.Gate`): ``all`` while the
        breaker is closed, else ``none``.  Half-open, the gateway probes Stripe itself with one cheap read in the
        background instead of letting a job be the probe: a message received only to probe would spend an SQS
        receive every few seconds for as long as the outage lasts, and SQS counts those against its redrive."""
        mode = self.breaker.admits()
        if mode == "probe":
            self._start_probe()
            return "none"
        return mode

    def _start_probe(self) -> None:
        with self._lock:
            if self._probing:
                return
            self._probing = True
        threading.Thread(target=self._probe, name="stripe-breaker-probe", daemon=True).start()

    def _probe(self) -> None:
        try:
            self.call("breaker-probe", self.client.v1.payment_intents.list, params={"limit": 1})
        except Exception:  # recorded by call(), or someone else took the probe: either way the breaker knows
            pass
        finally:
            with self._lock:
                self._probing = False

    # -- customers ---------------------------------------------------------------------------------------------
    def known_customer(self, customer_id: str, merchant: str = DEFAULT_MERCHANT) -> str | None:
        """The Stripe customer already made for ``merchant``'s customer ``customer_id`` (this process's memory, then
        Redis), or None: never creates one, never calls Stripe."""
        ref = customer_ref(merchant, customer_id)
        with self._lock:
            known = self._customers.get(ref)
        if known or self._redis is None:
            return known
        try:
            stored = self._redis.get(f"{self._prefix}stripe_customer{ref}")
        except redis.RedisError:
            return None
        if not stored:
            return None
        value = stored.decode() if isinstance(stored, bytes) else str(stored)
        with self._lock:
            self._customers[ref] = value
        return value

    def customer_for(self, job_id: str, customer_id: str, email: str | None, merchant: str = DEFAULT_MERCHANT) -> str:
        """The Stripe customer of ``merchant``'s customer ``customer_id``, created once (remembered in Redis and in
        process).  Customer ids are per merchant: the same id under two merchants is two Stripe customers."""
        known = self.known_customer(customer_id, merchant)
        if known:
            return known
        ref = customer_ref(merchant, customer_id)
        key = f"{self._prefix}stripe_customer{ref}"
        metadata = {"customer_id": customer_id}
        if merchant != DEFAULT_MERCHANT:
            metadata["merchant"] = merchant
        params: dict[str, Any] = {"metadata": metadata}
        if email:
            params["email"] = email
        created = self.call(
            job_id,
            self.client.v1.customers.create,
            params=params,
            options={"idempotency_key": f"customer{ref}"},
        )
        if self._redis is not None:
            with contextlib.suppress(redis.RedisError):
                self._redis.set(key, created.id)
        with self._lock:
            self._customers[ref] = created.id
        return str(created.id)

    def card_country(self, payment_method: str) -> str | None:
        """The issuing country of a card payment method, or None when Stripe does not say (no such method, or the
        lookup failed: the fraud rules then score no country mismatch).

        Remembered per process once Stripe answered (payment methods do not change country); a failed lookup is
        not remembered, so an outage cannot leave a card's country unknown afterwards.  Raises
        :class:`DependencyDown` without calling while the breaker refuses (open, or its probe is out).
        """
        with self._lock:
            if payment_method in self._card_countries:
                return self._card_countries[payment_method]
        try:
            pm = self.call(payment_method, self.client.v1.payment_methods.retrieve, payment_method)
        except stripe.StripeError as exc:
            if classify_stripe_error(exc).kind == "transient":
                return None  # not remembered: the next payment asks again
            country = None  # Stripe answered: no card country to be had
        else:
            card = getattr(pm, "card", None)
            found = getattr(card, "country", None) if card is not None else None
            country = str(found).upper() if found else None
        with self._lock:
            if len(self._card_countries) >= CARD_COUNTRIES_REMEMBERED:
                self._card_countries.pop(next(iter(self._card_countries)))
            self._card_countries[payment_method] = country
        return country

    # -- payment intents ---------------------------------------------------------------------------------------
    def create_and_confirm(
        self,
        job_id: str,
        *,
        amount: int,
        currency: str,
        customer: str,
        payment_method: str,
        idempotency_key: str,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Any:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "customer": customer,
            "payment_method": payment_method,
            "confirm": True,
            "payment_method_types": ["card"],
            "metadata": {**(metadata or {}), "job_id": job_id},
        }
        if description:
            params["description"] = description
        refuse_card_numbers(job_id, params)
        options = {"idempotency_key": idempotency_key}
        try:
            intent = self.call(
                job_id,
                self.client.v1.payment_intents.create,
                params={**params, "expand": CONFIRM_EXPAND},
                options=options,
            )
        except stripe.IdempotencyError:
            # The key was first used without ``expand`` (by an engine of before the expansion, the request cut
            # short by a deploy): Stripe compares parameters, so repeat that request exactly to get its answer.
            intent = self.call(job_id, self.client.v1.payment_intents.create, params=params, options=options)
        self._remember_balance_transaction(intent)
        return intent

    def confirm(self, job_id: str, intent_id: str, idempotency_key: str) -> Any:
        options = {"idempotency_key": idempotency_key}
        try:
            intent = self.call(
                job_id,
                self.client.v1.payment_intents.confirm,
                intent_id,
                params={"expand": CONFIRM_EXPAND},
                options=options,
            )
        except stripe.IdempotencyError:  # first sent without ``expand``: see create_and_confirm
            intent = self.call(job_id, self.client.v1.payment_intents.confirm, intent_id, options=options)
        self._remember_balance_transaction(intent)
        return intent

    def _remember_balance_transaction(self, intent: Any) -> None:
        """Keep the balance transaction an expanded intent carries, by charge id, for the fee read after it."""
        charge: Any = getattr(intent, "latest_charge", None)
        if charge is None or isinstance(charge, str):
            return  # no charge yet, or Stripe did not expand it
        txn = getattr(charge, "balance_transaction", None)
        if txn is None or isinstance(txn, str):
            return  # not captured yet (no balance transaction)
        with self._lock:
            if len(self._balance_transactions) >= FEES_REMEMBERED:
                self._balance_transactions.pop(next(iter(self._balance_transactions)))
            self._balance_transactions[str(charge.id)] = txn

    def seen_balance_transaction(self, charge_id: str) -> Any | None:
        """The balance transaction of ``charge_id`` as this process's create-and-confirm saw it expanded, once
        (forgotten when read: a later read asks Stripe), or None.  Balance transactions do not change once made."""
        with self._lock:
            return self._balance_transactions.pop(charge_id, None)

    def cancel_intent(self, job_id: str, intent_id: str, idempotency_key: str) -> Any:
        """Cancel the PaymentIntent ``intent_id`` (``abandoned``); the canceled intent.  Under the same key a repeat
        gets Stripe's saved answer.  Raises the SDK's errors (``InvalidRequestError`` when it is not cancelable)."""
        return self.call(
            job_id,
            self.client.v1.payment_intents.cancel,
            intent_id,
            params={"cancellation_reason": "abandoned"},
            options={"idempotency_key": idempotency_key},
        )

    def retrieve_intent(self, job_id: str, intent_id: str) -> Any:
        return self.call(job_id, self.client.v1.payment_intents.retrieve, intent_id)

    def intents_for_job(self, job_id: str, customer: str | None) -> list[Any]:
        """Every PaymentIntent whose ``metadata.job_id`` is ``job_id``: all pages of the customer's intents (a
        consistent read), and when those have none, all pages of a search (which covers an intent made for another
        customer, but is eventually consistent on Stripe)."""
        found: list[Any] = []
        if customer:
            found = self._all_pages(job_id, self.client.v1.payment_intents.list, {"customer": customer, "limit": 100})
            found = [pi for pi in found if metadata_of(pi).get("job_id") == job_id]
        if not found:
            params: dict[str, Any] = {"query": f"metadata['job_id']:'{job_id}'", "limit": 100}
            while True:
                result = self.call(job_id, self.client.v1.payment_intents.search, params=params)
                found.extend(result.data)
                if not result.has_more or not getattr(result, "next_page", None):
                    break
                params["page"] = result.next_page
        unique: dict[str, Any] = {}
        for pi in found:
            unique.setdefault(pi.id, pi)
        return list(unique.values())

    def find_intent(self, job_id: str, customer: str | None, recorded: str | None = None) -> Any | None:
        """The PaymentIntent made for ``job_id``: the recorded id if there is one, else the only intent
        :meth:`intents_for_job` finds.  None if Stripe has none.

        Raises :class:`DuplicateIntents` (after counting and logging the incident) when several intents carry the
        job's id: which one the ledger should book is an operator's decision, never this code's.
        """
        if recorded:
            return self.retrieve_intent(job_id, recorded)
        found = self.intents_for_job(job_id, customer)
        if len(found) > 1:
            ids = sorted(pi.id for pi in found)
            metrics.STRIPE_INCIDENTS.labels("payment", "several_intents").inc()
            log.error(
                "INCIDENT: %d PaymentIntents carry job_id %s: %s", len(ids), job_id, ", ".join(ids),
                extra={"job_id": job_id},
            )  # fmt: skip
            raise DuplicateIntents(job_id, ids)
        return found[0] if found else None

    def _all_pages(self, job_id: str, fn: Any, params: dict[str, Any]) -> list[Any]:
        """Every object of a cursor-paginated list call."""
        params = dict(params)
        found: list[Any] = []
        while True:
            page = self.call(job_id, fn, params=params)
            found.extend(page.data)
            if not page.has_more or not page.data:
                return found
            params["starting_after"] = page.data[-1].id

    # -- refunds -----------------------------------------------------------------------------------------------
    def create_refund(
        self,
        job_id: str,
        *,
        payment_intent: str,
        amount: int,
        idempotency_key: str,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Any:
        """Refund ``amount`` minor units of ``payment_intent``'s charge; ``metadata.job_id`` marks it as the engine's.

        Raises the SDK's errors (``InvalidRequestError`` ``amount_too_large`` / ``charge_already_refunded`` when
        Stripe has less left to refund than asked).
        """
        params: dict[str, Any] = {
            "payment_intent": payment_intent,
            "amount": amount,
            "metadata": {**(metadata or {}), "job_id": job_id},
        }
        if reason:
            params["reason"] = reason
        refuse_card_numbers(job_id, params)
        return self.call(
            job_id, self.client.v1.refunds.create, params=params, options={"idempotency_key": idempotency_key}
        )

    def list_refunds(self, job_id: str, *, payment_intent: str | None = None, charge: str | None = None) -> list[Any]:
        """Every refund of a PaymentIntent or a charge (all pages), newest first."""
        params: dict[str, Any] = {"limit": 100}
        if payment_intent:
            params["payment_intent"] = payment_intent
        if charge:
            params["charge"] = charge
        found: list[Any] = []
        while True:
            page = self.call(job_id, self.client.v1.refunds.list, params=params)
            found.extend(page.data)
            if not page.has_more or not page.data:
                return found
            params["starting_after"] = page.data[-1].id

    def retrieve_refund(self, job_id: str, refund_id: str) -> Any:
        """Stripe's current refund object (raises the SDK's errors; ``InvalidRequestError`` 404 when unknown)."""
        return self.call(job_id, self.client.v1.refunds.retrieve, refund_id)

    def find_refund(self, job_id: str, payment_intent: str, recorded: str | None = None) -> Any | None:
        """The refund made for ``job_id``: the recorded id first, then the intent's refunds filtered on
        ``metadata.job_id``.  None when Stripe has none (safe to create one under a new key generation)."""
        if recorded:
            return self.retrieve_refund(job_id, recorded)
        mine = [
            r
            for r in self.list_refunds(job_id, payment_intent=payment_intent)
            if metadata_of(r).get("job_id") == job_id
        ]
        if not mine:
            return None
        order = {"succeeded": 0, "pending": 1, "requires_action": 2}
        return sorted(mine, key=lambda r: (order.get(r.status, 9), -int(r.created or 0)))[0]


class DuplicateIntents(PoisonError):
    """Several PaymentIntents carry one job's id: a possible double charge, for an operator to resolve (the job is
    dead-lettered with this reason; ``payments_stripe_incidents_total`` counts it)."""

    def __init__(self, job_id: str, intent_ids: list[str]) -> None:
        super().__init__(
            f"incident: {len(intent_ids)} PaymentIntents carry job_id {job_id} ({', '.join(intent_ids)}); "
            "refund the extra one(s) at Stripe, then resolve the job"
        )
        self.job_id = job_id
        self.intent_ids = intent_ids


def refuse_card_numbers(job_id: str, params: dict[str, Any]) -> None:
    """The last guard before Stripe (issue 14 item 3): raise :class:`engine.errors.PoisonError` when the
    ``metadata`` or ``description`` about to be sent holds what looks like a card number (the ingest and the worker
    refuse such input earlier; this keeps it so whatever path a value took).  The error names the field only."""
    where = find_pan({"metadata": params.get("metadata"), "description": params.get("description")})
    if where is not None:
        raise PoisonError(f"job {job_id}: not sent to Stripe, what looks like a card number at {where}")


def metadata_of(obj: Any) -> dict[str, str]:
    """A Stripe object's ``metadata`` as a plain dict (the SDK's StripeObject has no ``.get``)."""
    metadata = getattr(obj, "metadata", None)
    if metadata is None:
        return {}
    to_dict = getattr(metadata, "to_dict", None)
    return dict(to_dict() if callable(to_dict) else metadata)


def _operation(fn: Any) -> str:
    """A low-cardinality name for an SDK call: ``payment_intents.create``."""
    owner = type(getattr(fn, "__self__", None)).__name__.removesuffix("Service")
    snake = "".join("_" + ch.lower() if ch.isupper() else ch for ch in owner).lstrip("_")
    return f"{snake}s.{getattr(fn, '__name__', 'call')}" if snake else getattr(fn, "__name__", "call")


def _outcome(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.CardError):
        return "declined"
    if isinstance(exc, stripe.RateLimitError):
        return "rate_limited"
    if isinstance(exc, stripe.APIConnectionError):
        return "connection_error"
    status = exc.http_status or 0
    return "server_error" if status >= 500 else "client_error"
