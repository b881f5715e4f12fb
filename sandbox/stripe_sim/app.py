"""The request pipeline: authentication, faults, idempotency and latency around the ``/v1`` handlers, and the
``/_sim`` control and introspection routes.

:class:`SandboxApp` is called by the HTTP server with the raw request and returns a :class:`Response`, or ``None``
when the connection must be dropped without an answer (the ``drop_rate`` and ``down`` knobs).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sandbox.stripe_sim.api import API_VERSION, ApiRequest, StripeAPI
from sandbox.stripe_sim.clock import Clock
from sandbox.stripe_sim.errors import StripeError, api_error, invalid_request
from sandbox.stripe_sim.faults import Faults, KnobError
from sandbox.stripe_sim.forms import decode_form
from sandbox.stripe_sim.idempotency import MAX_KEY_LENGTH, IdempotencyStore, Outcome, SavedResponse, fingerprint
from sandbox.stripe_sim.objects import new_id
from sandbox.stripe_sim.rate_limits import RateLimits, endpoint_of
from sandbox.stripe_sim.store import Store, public
from sandbox.stripe_sim.webhooks import WebhookDispatcher

__all__ = ["Response", "SandboxApp"]

log = logging.getLogger(__name__)

_JSON = "application/json"
_KEY = re.compile(r"^(sk|rk)_test_[A-Za-z0-9_]+$")
_SIM_LISTS = {
    "payment_intents": "payment_intent",
    "charges": "charge",
    "refunds": "refund",
    "customers": "customer",
    "events": "event",
    "payment_methods": "payment_method",
    "webhook_endpoints": "webhook_endpoint",
    "balance_transactions": "balance_transaction",
    "disputes": "dispute",
    "payouts": "payout",
}


@dataclass
class Response:
    """An HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    out = {"Content-Type": _JSON}
    if headers:
        out.update(headers)
    # No indent: json only uses its C encoder without one, which more than doubles the throughput.
    return Response(status, json.dumps(payload).encode(), out)


class SandboxApp:
    """Everything between the socket and the handlers."""

    def __init__(
        self, store: Store, faults: Faults, clock: Clock, idempotency: IdempotencyStore, dispatcher: WebhookDispatcher
    ) -> None:
        self.store = store
        self.faults = faults
        self.clock = clock
        self.idempotency = idempotency
        self.dispatcher = dispatcher
        self.api = StripeAPI(store, faults, clock, dispatcher)
        # Counters for GET /_sim/stats (how many requests, and which faults were injected).
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "requests",
                "dropped",
                "dropped_after",
                "dropped_in_flight",
                "injected_429",
                "injected_500",
                "rate_limited",
            ),
            0,
        )
        # Requests per endpoint (``POST /v1/customers``: 3), for GET /_sim/stats: what a test says was called.
        self.by_endpoint: dict[str, int] = {}
        # Requests still being processed after their connection was dropped (drop_in_flight_rate).
        self._in_flight: set[asyncio.Task[None]] = set()
        self._resets = 0  # a request still in flight when the sandbox is reset is forgotten, not processed
        self.rate_limits = RateLimits()

    async def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response | None:
        """Answer one request; ``headers`` have lower-case names.  None means: drop the connection."""
        request_id = new_id("req", 14)
        parts = urlsplit(target)
        path = parts.path
        response: Response | None
        if path.startswith("/_sim/") or path == "/_sim":
            response = self._sim(method, path, parts.query, body)
        else:
            response = await self._v1(method, path, parts.query, headers, body, request_id)
            if response is None:
                return None
        response.headers.setdefault("Request-Id", request_id)
        return response

    # -- /v1 ---------------------------------------------------------------------------------------------------------
    async def _v1(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, request_id: str
    ) -> Response | None:
        """One ``/v1`` request, in Stripe's order: connection faults, authentication, injected 429/500 (never
        saved), parameter decoding, the idempotency key (replay / mismatch / in flight), latency, the endpoint,
        and saving its answer under the key when Stripe would."""
        knobs = self.faults.knobs
        self.stats["requests"] += 1
        endpoint = endpoint_of(method, path)
        self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1
        # "down" refuses service and drop_rate loses the connection: both before anything else happens.
        if knobs.down or self.faults.roll(knobs.drop_rate):
            self.stats["dropped"] += 1
            return None
        version = headers.get("stripe-version") or API_VERSION
        base_headers = {"Stripe-Version": version}
        try:
            api_key = self._authenticate(headers)
            # Stripe's request limits (knobs; off by default): refused before the endpoint, nothing saved.
            if (knobs.rate_limit_per_account or knobs.rate_limit_per_endpoint) and not self.rate_limits.admit(
                api_key, endpoint, knobs.rate_limit_per_account, knobs.rate_limit_per_endpoint
            ):
                self.stats["rate_limited"] += 1
                raise StripeError(
                    429,
                    "invalid_request_error",
                    "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                    code="rate_limit",
                    saved=False,
                )
            # Injected 429/500 happen in front of the endpoint: Stripe saves nothing under the key for them.
            if self.faults.roll(knobs.fail_rate_429):
                self.stats["injected_429"] += 1
                err = StripeError(
                    429,
                    "invalid_request_error",
                    "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
                    code="rate_limit",
                    saved=False,
                )
                if knobs.should_retry_429 is not None:
                    err.headers["Stripe-Should-Retry"] = "true" if knobs.should_retry_429 else "false"
                raise err
            if self.faults.roll(knobs.fail_rate_500):
                self.stats["injected_500"] += 1
                raise api_error(saved=False)
            raw = body if method == "POST" else query.encode()
            params = decode_form(raw)
            idem_key = headers.get("idempotency-key") if method == "POST" else None
            if idem_key is not None and not 1 <= len(idem_key) <= MAX_KEY_LENGTH:
                raise invalid_request(
                    f"Idempotency keys must be between 1 and {MAX_KEY_LENGTH} characters long; the key you sent "
                    f"has {len(idem_key)}.",
                    param="Idempotency-Key",
                )
        except StripeError as err:
            return _json(err.status, err.body(), {**base_headers, **err.headers})
        req = ApiRequest(method, path, params, api_key, idem_key, request_id, headers.get("stripe-version"))
        if idem_key is None:
            await self._delay()
            response = self._run(req, base_headers)[0]
            return self._maybe_lose(response)
        digest = fingerprint(method, path, params)
        begin = self.idempotency.begin(api_key, idem_key, digest)
        if begin.outcome is Outcome.MISMATCH:
            mismatch = StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                f"Try using a key other than '{idem_key}' if you meant to execute a different request.",
                saved=False,
            )
            return _json(400, mismatch.body(), base_headers)
        if begin.outcome is Outcome.IN_FLIGHT:
            conflict = StripeError(
                409,
                "invalid_request_error",
                "There is currently another in-progress request using this Idempotent Key (probably because of a "
                "timeout). Please try again later.",
                code="idempotency_key_in_use",
                saved=False,
            )
            return _json(409, conflict.body(), {**base_headers, "Stripe-Should-Retry": "true"})
        if begin.outcome is Outcome.REPLAY:
            assert begin.saved is not None
            await self._delay()
            saved = begin.saved
            replay_headers = {
                **saved.headers,
                "Idempotent-Replayed": "true",
                "Original-Request": saved.request_id,
                "Idempotency-Key": idem_key,
            }
            return Response(saved.status, saved.body, replay_headers)
        if self.faults.roll(knobs.drop_in_flight_rate):
            # The connection is lost now; Stripe goes on processing the request and saves its answer later.
            self.stats["dropped_in_flight"] += 1
            task = asyncio.get_running_loop().create_task(
                self._finish_later(req, base_headers, api_key, idem_key, request_id, knobs.in_flight_seconds)
            )
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            return None
        response = await self._run_keyed(req, base_headers, api_key, idem_key, request_id)
        return self._maybe_lose(response)

    async def _run_keyed(
        self, req: ApiRequest, base_headers: dict[str, str], api_key: str, idem_key: str, request_id: str
    ) -> Response:
        """Run a request that holds its idempotency key, then save its answer under the key (or release it)."""
        try:
            await self._delay()
            response, saved_flag = self._run(req, base_headers)
        except BaseException:
            self.idempotency.release(api_key, idem_key)
            raise
        response.headers["Idempotency-Key"] = idem_key
        if saved_flag:
            self.idempotency.complete(
                api_key, idem_key, SavedResponse(response.status, dict(response.headers), response.body, request_id)
            )
        else:
            self.idempotency.release(api_key, idem_key)
        return response

    async def _finish_later(
        self,
        req: ApiRequest,
        base_headers: dict[str, str],
        api_key: str,
        idem_key: str,
        request_id: str,
        after_seconds: float,
    ) -> None:
        """Process a request whose connection was dropped, ``after_seconds`` later (the key stays locked)."""
        resets = self._resets
        await asyncio.sleep(after_seconds)
        if resets == self._resets:
            await self._run_keyed(req, base_headers, api_key, idem_key, request_id)

    def _maybe_lose(self, response: Response) -> Response | None:
        """The answer, or None (connection dropped) with probability ``drop_after_rate``."""
        if self.faults.roll(self.faults.knobs.drop_after_rate):
            self.stats["dropped_after"] += 1
            return None
        return response

    def _authenticate(self, headers: dict[str, str]) -> str:
        """The test-mode API key of the request (Bearer, or basic auth with the key as user).

        Raises StripeError 401 when it is missing or not a ``sk_test_``/``rk_test_`` key.
        """
        auth = headers.get("authorization", "").strip()
        key = ""
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        elif auth.lower().startswith("basic "):
            try:
                key = base64.b64decode(auth[6:].strip()).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeError(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the Authorization header, using "
                "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#"
                "authentication for details, or we can help at https://support.stripe.com/.",
                saved=False,
            )
        if not _KEY.match(key):
            masked = key[:8] + "*" * max(len(key) - 12, 4) + key[-4:]
            raise StripeError(
                401,
                "invalid_request_error",
                f"Invalid API Key provided: {masked}. The sandbox accepts test-mode keys (sk_test_… or rk_test_…).",
                code="api_key_invalid",
                saved=False,
            )
        return key

    async def _delay(self) -> None:
        delay = self.faults.latency_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    def _run(self, req: ApiRequest, base_headers: dict[str, str]) -> tuple[Response, bool]:
        """Run the handler; returns the answer and whether Stripe would save it under the idempotency key."""
        try:
            with self.store.lock:
                try:
                    result = self.api.dispatch(req)
                finally:
                    self.store.flush()
            return _json(200, result, dict(base_headers)), True
        except StripeError as err:
            return _json(err.status, err.body(), {**base_headers, **err.headers}), err.saved
        except Exception as exc:  # a sandbox bug must still answer like Stripe would, and be visible
            log.exception("stripe sandbox handler failed")
            internal = api_error(f"Sandbox internal error: {type(exc).__name__}: {exc}", saved=False)
            return _json(500, internal.body(), base_headers), False

    # -- /_sim -------------------------------------------------------------------------------------------------------
    def _sim(self, method: str, path: str, query: str, body: bytes) -> Response:
        try:
            return self._sim_route(method, path, query, body)
        except KnobError as exc:
            return _json(400, {"error": {"type": "invalid_request_error", "message": str(exc)}})
        except StripeError as err:
            return _json(err.status, err.body())
        except ValueError as exc:  # bad JSON
            return _json(400, {"error": {"type": "invalid_request_error", "message": f"invalid JSON body: {exc}"}})

    def _sim_route(self, method: str, path: str, query: str, body: bytes) -> Response:
        segments = [s for s in path.split("/") if s][1:]
        payload: dict[str, Any] = {}
        if method == "POST" and body.strip():
            loaded = json.loads(body)
            if not isinstance(loaded, dict):
                raise ValueError("expected a JSON object")
            payload = loaded
        if segments == ["health"] and method == "GET":
            # Reflects the `down` knob, so a health check of the engine sees the outage it simulates.
            down = self.faults.knobs.down
            return _json(503 if down else 200, {"ok": not down, "down": down})
        if segments == ["config"]:
            if method == "POST":
                self.faults.merge(payload)
            elif method != "GET":
                return _json(405, {"error": {"type": "invalid_request_error", "message": "GET or POST"}})
            return _json(200, self.faults.knobs.to_dict())
        if segments == ["reset"] and method == "POST":
            self.reset()
            return _json(200, {"ok": True})
        if segments == ["clock"] and method == "POST":
            advance = payload.get("advance_seconds", 0)
            if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
                raise ValueError("advance_seconds must be a non-negative number")
            self.clock.advance(float(advance))
            return _json(200, {"now": self.clock.now()})
        if segments == ["stats"] and method == "GET":
            return _json(200, {**self.stats, "by_endpoint": dict(self.by_endpoint)})
        if segments == ["webhook_deliveries"] and method == "GET":
            return _json(200, {"object": "list", "data": list(self.dispatcher.attempts)})
        if len(segments) == 3 and segments[0] == "payment_intents" and segments[2] == "authenticate":
            if method != "POST":
                return _json(405, {"error": {"type": "invalid_request_error", "message": "POST"}})
            result = payload.get("result", "succeeded")
            with self.store.lock:
                try:
                    intent = self.api.authenticate(segments[1], str(result))
                finally:
                    self.store.flush()
                return _json(200, public(intent))
        if len(segments) == 3 and segments[0] == "refunds" and segments[2] == "settle":
            if method != "POST":
                return _json(405, {"error": {"type": "invalid_request_error", "message": "POST"}})
            with self.store.lock:
                try:
                    refund = self.api.settle_refund(segments[1], str(payload.get("result", "succeeded")))
                finally:
                    self.store.flush()
                return _json(200, public(refund))
        money = self._sim_money(method, segments, payload)
        if money is not None:
            return money
        if len(segments) == 1 and segments[0] in _SIM_LISTS and method == "GET":
            return _json(200, {"object": "list", "data": self._introspect(_SIM_LISTS[segments[0]], query)})
        return _json(404, {"error": {"type": "invalid_request_error", "message": f"unknown sandbox route {path}"}})

    def _sim_money(self, method: str, segments: list[str], payload: dict[str, Any]) -> Response | None:
        """``POST /_sim/charges/{id}/dispute`` (``amount``?, ``reason``?), ``POST /_sim/disputes/{id}/close``
        (``status`` won|lost), ``POST /_sim/payouts`` (``fail``?, ``currency``?); None for another route."""
        if method != "POST":
            return None
        with self.store.lock:
            try:
                if len(segments) == 3 and segments[0] == "charges" and segments[2] == "dispute":
                    amount = payload.get("amount")
                    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
                        raise ValueError("amount must be an integer")
                    reason = str(payload.get("reason", "fraudulent"))
                    return _json(200, public(self.api.open_dispute(segments[1], amount, reason)))
                if len(segments) == 3 and segments[0] == "disputes" and segments[2] == "close":
                    return _json(200, public(self.api.close_dispute(segments[1], str(payload.get("status", "")))))
                if segments == ["payouts"]:
                    currency = payload.get("currency")
                    made = self.api.run_payouts(bool(payload.get("fail", False)), str(currency) if currency else None)
                    return _json(200, {"object": "list", "data": [public(p) for p in made]})
            finally:
                self.store.flush()
        return None

    def _introspect(self, kind: str, query: str) -> list[dict[str, Any]]:
        """Every object of ``kind``, oldest first, filtered by ``job_id``, ``status``, ``customer`` or
        ``payment_intent`` query parameters (``metadata[key]=value`` too)."""
        filters = decode_form(query)
        metadata_filter = filters.pop("metadata", {})
        if "job_id" in filters:
            metadata_filter = {
                **(metadata_filter if isinstance(metadata_filter, dict) else {}),
                "job_id": filters.pop("job_id"),
            }
        out = []
        for obj in self.store.all(kind):
            if any(obj.get(k) != v for k, v in filters.items() if isinstance(v, str)):
                continue
            if isinstance(metadata_filter, dict) and any(
                (obj.get("metadata") or {}).get(k) != v for k, v in metadata_filter.items()
            ):
                continue
            out.append(public(obj))
        return out

    def reset(self) -> None:
        """Forget every object, saved idempotent answer, pending webhook, request in flight and knob."""
        self._resets += 1
        with self.store.lock:
            self.store.reset()
        self.idempotency.clear()
        self.dispatcher.clear()
        self.faults.reset()
        self.rate_limits.clear()
        self.clock.reset()
        for name in self.stats:
            self.stats[name] = 0
        self.by_endpoint.clear()
