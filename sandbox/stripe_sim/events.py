"""Events (retrieve, list) and webhook endpoints (create with signing secret, list, update, delete)."""

from __future__ import annotations

import re
from typing import Any

from sandbox.stripe_sim.api_base import API_VERSION, ApiBase, ApiRequest
from sandbox.stripe_sim.errors import invalid_request, missing_param
from sandbox.stripe_sim.objects import new_id
from sandbox.stripe_sim.params import COMMON, bool_param, check_params, metadata_param, str_list_param, str_param

WEBHOOK_ENDPOINT_PARAMS = COMMON | {
    "api_version",
    "connect",
    "description",
    "enabled_events",
    "metadata",
    "url",
    "disabled",
}


class EventEndpoints(ApiBase):
    """Events (retrieve, list) and webhook endpoints (create with signing secret, list, update, delete)."""

    def retrieve_event(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        return self._get("event", id)

    def list_events(self, req: ApiRequest) -> dict[str, Any]:
        event_type = str_param(req.params, "type")
        types = str_list_param(req.params, "types")
        pattern = re.compile("^" + re.escape(event_type).replace(r"\*", ".*") + "$") if event_type else None

        def keep(e: dict[str, Any]) -> bool:
            if pattern is not None and not pattern.match(e["type"]):
                return False
            return types is None or e["type"] in types

        return self._list("event", req, "/v1/events", keep, ["type", "types", "delivery_success"])

    def create_webhook_endpoint(self, req: ApiRequest) -> dict[str, Any]:
        params = req.params
        check_params(params, WEBHOOK_ENDPOINT_PARAMS - {"disabled"})
        url = str_param(params, "url", required=True)
        assert url is not None
        if not re.match(r"^https?://", url):
            raise invalid_request("Invalid URL: must be an http(s) URL", param="url", code="url_invalid")
        events = str_list_param(params, "enabled_events")
        if not events:
            raise missing_param("enabled_events")
        secret = "whsec_" + new_id("x", 32)[2:]
        endpoint = {
            "id": new_id("we"),
            "object": "webhook_endpoint",
            "api_version": str_param(params, "api_version") or API_VERSION,
            "application": None,
            "created": self._now(),
            "description": str_param(params, "description"),
            "enabled_events": events,
            "livemode": False,
            "metadata": metadata_param(params),
            "secret": secret,
            "status": "enabled",
            "url": url,
            "_sim": {"secret": secret},
        }
        self.store.put("webhook_endpoint", endpoint)
        # Stripe shows the secret only in the answer to the creation; keep it private from now on.
        answer = dict(endpoint)
        del endpoint["secret"]
        return answer

    def retrieve_webhook_endpoint(self, req: ApiRequest, id: str) -> dict[str, Any]:
        check_params(req.params, COMMON)
        return self._get("webhook_endpoint", id)

    def update_webhook_endpoint(self, req: ApiRequest, id: str) -> dict[str, Any]:
        params = req.params
        check_params(params, WEBHOOK_ENDPOINT_PARAMS - {"connect", "api_version"})
        endpoint = self._get("webhook_endpoint", id)
        if "url" in params:
            endpoint["url"] = str_param(params, "url", required=True)
        if "enabled_events" in params:
            endpoint["enabled_events"] = str_list_param(params, "enabled_events") or endpoint["enabled_events"]
        if "description" in params:
            endpoint["description"] = str_param(params, "description")
        disabled = bool_param(params, "disabled")
        if disabled is not None:
            endpoint["status"] = "disabled" if disabled else "enabled"
        endpoint["metadata"] = metadata_param(params, endpoint["metadata"])
        self.store.put("webhook_endpoint", endpoint)
        return endpoint

    def delete_webhook_endpoint(self, req: ApiRequest, id: str) -> dict[str, Any]:
        self._get("webhook_endpoint", id)
        self.store.delete("webhook_endpoint", id)
        return {"id": id, "object": "webhook_endpoint", "deleted": True}

    def list_webhook_endpoints(self, req: ApiRequest) -> dict[str, Any]:
        return self._list("webhook_endpoint", req, "/v1/webhook_endpoints")
