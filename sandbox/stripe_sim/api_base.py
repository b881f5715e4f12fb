"""What every group of ``/v1`` handlers shares: the request, object lookup, events, lists, search and expansion.

Handler groups (customers, payment methods, payment intents, refunds, events) subclass :class:`ApiBase`;
:class:`sandbox.stripe_sim.api.StripeAPI` combines them and routes requests to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.stripe_sim.clock import Clock
from sandbox.stripe_sim.errors import invalid_request, resource_missing
from sandbox.stripe_sim.faults import Faults
from sandbox.stripe_sim.objects import kind_of, new_id, payment_method_object, snapshot
from sandbox.stripe_sim.params import LIST_PARAMS, check_params, created_matches, int_param, str_param
from sandbox.stripe_sim.search import compile_query
from sandbox.stripe_sim.store import Store, public
from sandbox.stripe_sim.test_methods import TestCard, find_test_card
from sandbox.stripe_sim.webhooks import WebhookDispatcher, endpoint_wants

__all__ = ["API_VERSION", "ApiBase", "ApiRequest"]

# The API version the installed SDK (stripe 16.1) pins; events and webhook endpoints report it by default.
API_VERSION = "2026-10-28.endive"


@dataclass
class ApiRequest:
    """One decoded ``/v1`` request."""

    method: str
    path: str
    params: dict[str, Any]
    api_key: str = "sk_test_sandbox"
    idempotency_key: str | None = None
    request_id: str = field(default_factory=lambda: new_id("req", 14))
    stripe_version: str | None = None


class ApiBase:
    """State and helpers the handler groups share."""

    def __init__(self, store: Store, faults: Faults, clock: Clock, dispatcher: WebhookDispatcher) -> None:
        self.store = store
        self.faults = faults
        self.clock = clock
        self.dispatcher = dispatcher

    def _now(self) -> int:
        return int(self.clock.now())

    def _get(self, kind: str, object_id: str, param: str = "id", label: str | None = None) -> dict[str, Any]:
        obj = self.store.get(kind, object_id)
        if obj is None or obj.get("deleted"):
            raise resource_missing(label or kind, object_id, param)
        return obj

    def emit(
        self, event_type: str, obj: dict[str, Any], req: ApiRequest | None, previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record an Event carrying a snapshot of ``obj`` and queue it for every subscribed endpoint."""
        data: dict[str, Any] = {"object": snapshot(public(obj))}
        if previous:
            data["previous_attributes"] = previous
        endpoints = [e for e in self.store.all("webhook_endpoint") if endpoint_wants(e, event_type)]
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self._now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": len(endpoints),
            "request": {
                "id": req.request_id if req else None,
                "idempotency_key": req.idempotency_key if req else None,
            },
            "type": event_type,
        }
        self.store.put("event", event)
        if endpoints:
            self.dispatcher.enqueue(event)
        return event

    def _list(
        self,
        kind: str,
        req: ApiRequest,
        url: str,
        keep: Callable[[dict[str, Any]], bool] | None = None,
        extra_params: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Cursor pagination as Stripe does it: newest first, ``limit`` 1–100 (default 10)."""
        params = req.params
        check_params(params, LIST_PARAMS | set(extra_params))
        limit = int_param(params, "limit")
        if limit is None:
            limit = 10
        if not 1 <= limit <= 100:
            raise invalid_request("Invalid limit: must be between 1 and 100", param="limit")
        items = [o for o in self.store.iter_newest_first(kind) if not o.get("deleted") and (keep is None or keep(o))]
        created = params.get("created")
        if created is not None:
            items = [o for o in items if created_matches(o["created"], created)]
        after = str_param(params, "starting_after")
        before = str_param(params, "ending_before")
        if after is not None:
            ids = [o["id"] for o in items]
            if after not in ids:
                raise resource_missing(kind, after, "starting_after")
            items = items[ids.index(after) + 1 :]
            has_more = len(items) > limit
            items = items[:limit]
        elif before is not None:
            ids = [o["id"] for o in items]
            if before not in ids:
                raise resource_missing(kind, before, "ending_before")
            items = items[: ids.index(before)]
            has_more = len(items) > limit
            items = items[-limit:]
        else:
            has_more = len(items) > limit
            items = items[:limit]
        return {"object": "list", "data": [public(o) for o in items], "has_more": has_more, "url": url}

    def _search(self, kind: str, req: ApiRequest, url: str, fields: frozenset[str]) -> dict[str, Any]:
        params = req.params
        check_params(params, {"query", "limit", "page", "expand"})
        query = str_param(params, "query", required=True)
        assert query is not None
        predicate = compile_query(query, fields)
        limit = int_param(params, "limit") or 10
        if not 1 <= limit <= 100:
            raise invalid_request("Invalid limit: must be between 1 and 100", param="limit")
        page = str_param(params, "page")
        offset = 0
        if page is not None:
            if not page.startswith("page_") or not page[5:].isdigit():
                raise invalid_request(f"Invalid page: {page}", param="page")
            offset = int(page[5:])
        # Stripe's search index lags behind writes; the knob models it (a list is a consistent read).
        searchable_before = self.clock.now() - self.faults.knobs.search_lag_seconds
        matches = [
            o
            for o in self.store.iter_newest_first(kind)
            if not o.get("deleted") and o.get("created", 0) <= searchable_before and predicate(o)
        ]
        chunk = matches[offset : offset + limit]
        has_more = offset + limit < len(matches)
        return {
            "object": "search_result",
            "data": [public(o) for o in chunk],
            "has_more": has_more,
            "next_page": f"page_{offset + limit}" if has_more else None,
            "url": url,
        }

    def _expand(self, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        out = snapshot(obj)
        for path in paths:
            self._expand_one(out, path.split("."), path)
        return out

    def _expand_one(self, node: Any, parts: list[str], path: str) -> None:
        if not parts:
            return
        if isinstance(node, list):
            for item in node:
                self._expand_one(item, parts, path)
            return
        if not isinstance(node, dict):
            return
        head, rest = parts[0], parts[1:]
        if head not in node:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        value = node[head]
        if isinstance(value, str):
            kind = kind_of(value)
            target = self.store.get(kind, value) if kind else None
            if target is None:
                if kind is None and not rest:
                    return  # e.g. balance_transaction: kept as the id, the sandbox does not model it
                raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
            node[head] = snapshot(public(target))
            value = node[head]
        self._expand_one(value, rest, path)

    def _test_card_of(self, pm: dict[str, Any]) -> TestCard:
        card = find_test_card(pm["_sim"]["card"])
        assert card is not None
        return card

    def _pm_names(self, pm: dict[str, Any]) -> tuple[str, str, str]:
        """The names a payment method answers to in the knobs: its id, the token it came from, its card token."""
        sim = pm.get("_sim", {})
        return pm["id"], sim.get("source", pm["id"]), sim.get("card", pm["id"])

    def _materialize(self, ref: str, param: str) -> dict[str, Any]:
        """The PaymentMethod ``ref`` names: a stored one, or a new one made from a test token or number.

        A test token (``pm_card_visa``, ``tok_visa``) makes a new PaymentMethod each time it is used, as on Stripe.
        Raises StripeError 400 ``resource_missing`` (param ``param``) for an unknown id.
        """
        existing = self.store.get("payment_method", ref)
        if existing is not None:
            return existing
        card = find_test_card(ref) if ref.startswith(("pm_card_", "tok_")) else None
        if card is None:
            raise invalid_request(f"No such PaymentMethod: '{ref}'", param=param, code="resource_missing")
        now = self._now()
        pm = payment_method_object(new_id("pm"), card, now, ref, time.gmtime(now).tm_year + 3)
        return self.store.put("payment_method", pm)
