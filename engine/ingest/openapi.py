"""The ingest's OpenAPI document: what ``/openapi.json`` promises upstream teams that generate clients from it.

FastAPI's generated document is completed here (``docs/api.md`` is the prose of the same contract):

* request body models and their nested models are components, every ``$ref`` points at ``#/components/schemas``
  (a model's own ``$defs`` would point nowhere once the schema sits inside an operation);
* every documented error status of an operation answers the one error envelope (``ErrorEnvelope``); FastAPI's
  default 422 ``{"detail": …}``, which the API never answers, is removed;
* a ``bearer`` security scheme (Swagger UI's Authorize button), the roles in each operation's description;
* ``Idempotency-Key`` and ``X-Request-ID`` declared as header parameters, the answer's headers (``Location``,
  ``Idempotent-Replayed``, ``WWW-Authenticate``, ``Retry-After``) declared on the responses;
* operation ids in camelCase (``createPayment``, ``getJob``);
* links from every accepted job (its 202) to ``getJob`` and ``reviewJob`` through the answer's ``id``, and from a
  subscription's job to the subscription's operations through ``subscription.id`` (clients and schemathesis'
  stateful phase follow them).

A route declares what the document cannot see in its code with :func:`contract` (its ``openapi_extra``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from engine.ingest.schemas import ErrorEnvelope, Job

_EXTENSION = "x-payments-contract"
_COMPONENTS = "#/components/schemas/"
ERROR_SCHEMA = "ErrorEnvelope"
BEARER = "bearer"

#: Operation ids that are not the route function's name in camelCase.
_OPERATION_IDS = {
    "upload_settlement": "createSettlement",
    "create_payments": "createPaymentBatch",
    "payment_method": "updateSubscriptionPaymentMethod",
    "stripe_webhook": "receiveStripeWebhook",
    "health": "getHealth",
    "live": "getLiveness",
    "ready": "getReadiness",
}

_ERROR_DESCRIPTIONS = {
    400: "A malformed header (`Idempotency-Key`, `X-Request-ID`: `idempotency_key_missing`, "
    "`idempotency_key_invalid`, `request_id_invalid`, `pan_detected`) or request (`invalid_request`).",
    401: "No bearer token, or one that is malformed, expired or wrongly signed (`unauthenticated`).",
    403: "The token's role may not use this operation (`forbidden`), or the identity provider's token names no "
    "merchant (`merchant_required`).",
    404: "No such object (`not_found`; `param` names it).",
    409: "The first request with this Idempotency-Key has not answered yet (`idempotency_key_in_use`), or the "
    "object's state forbids the operation.",
    413: "The body is above the route's limit (`body_too_large`).",
    415: "The body is not `text/csv` (`unsupported_media_type`).",
    422: "The request does not validate (`validation_error`, `pan_detected`, ...; `param` names the field), or the "
    "Idempotency-Key was used with another request (`idempotency_key_reused`).",
    429: "Too many requests this minute (`rate_limited`); wait `Retry-After` seconds.",
    503: "A dependency cannot take the request now (`unavailable`, `rate_limiter_unavailable`); nothing was "
    "accepted; retry after `Retry-After` seconds.",
}

_REQUEST_ID_PARAMETER = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Correlation id carried into every log line and message of the job (made when absent, echoed "
    "in the answer): 1-255 characters of `[A-Za-z0-9._:-]`, never a card number.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[A-Za-z0-9._:-]{1,255}$"},
}
_IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Makes the request safe to retry: the same key with the same request answers the first answer "
    "again (`Idempotent-Replayed: true`). 1-255 characters of `[A-Za-z0-9._:-]`, never a card number.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[A-Za-z0-9._:-]{1,255}$"},
}

_STRING = {"schema": {"type": "string"}}
_INTEGER = {"schema": {"type": "integer"}}
_REQUEST_ID_HEADER = {"description": "The request's correlation id.", **_STRING}
_RETRY_AFTER_HEADER = {"description": "Seconds to wait before retrying.", **_INTEGER}
_JOB_HEADERS = {
    "Location": {"description": "The job's URL: `/v1/jobs/{id}`.", **_STRING},
    "Idempotent-Replayed": {
        "description": "`true` when this is the saved answer of an earlier request with the same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


#: Where an accepted job's answer leads: its id is the job to poll or review.
JOB_LINKS: dict[str, Any] = {
    "getJob": {
        "operationId": "getJob",
        "parameters": {"job_id": "$response.body#/id"},
        "description": "The accepted job: poll it until its `status` is final.",
    },
    "reviewJob": {
        "operationId": "reviewJob",
        "parameters": {"job_id": "$response.body#/id"},
        "description": "Decide the job when it is parked `in_review`.",
    },
}


def contract(
    *,
    roles: Iterable[str] | None = None,
    body: type[BaseModel] | None = None,
    idempotent: bool = False,
    errors: Iterable[int] = (),
    job: bool = False,
    answer: type[BaseModel] | None = None,
    links: dict[str, Any] | None = None,
    models: Iterable[type[BaseModel]] = (),
    headers: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The ``openapi_extra`` of a route: who may call it (``roles``: the bearer roles, ``None`` for a route without
    a token), its JSON ``body`` model (the route reads the raw body itself), whether it takes an
    ``Idempotency-Key``, the error statuses its own code answers beyond those every route of its kind has, and
    whether its success answer is a job accepted (202 with ``Location``); ``answer`` is the model of its success
    body (a :class:`Job` when ``job``); ``links`` are OpenAPI links of its success answer beyond a job's own
    (:data:`JOB_LINKS`); ``models`` are components the document should carry besides (a model the prose refers to);
    ``headers`` are the route's own header parameters (OpenAPI parameter objects).
    :func:`install_openapi` turns it into the operation's parameters, security and responses."""
    extra: dict[str, Any] = {
        _EXTENSION: {
            "roles": list(roles) if roles is not None else None,
            "idempotent": idempotent,
            "errors": sorted(set(errors)),
            "job": job,
            "links": {**(JOB_LINKS if job else {}), **(links or {})},
            "models": {m.__name__: m.model_json_schema(ref_template=_COMPONENTS + "{model}") for m in models},
            "headers": [dict(h) for h in headers],
        }
    }
    model = answer or (Job if job else None)
    if model is not None:
        extra[_EXTENSION]["answer"] = model.__name__
        extra[_EXTENSION]["answer_schema"] = model.model_json_schema(ref_template=_COMPONENTS + "{model}")
    if body is not None:
        extra["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body.model_json_schema(ref_template=_COMPONENTS + "{model}")}},
        }
    return extra


def operation_id(route: APIRoute) -> str:
    """The route's operation id: its function name in camelCase unless :data:`_OPERATION_IDS` names another."""
    if route.name in _OPERATION_IDS:
        return _OPERATION_IDS[route.name]
    first, *rest = route.name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_document` as the app's ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of ``app``, completed as the module docstring says.

    Raises :class:`ValueError` when two different models would take one component name.
    """
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _add_model(schemas, ErrorEnvelope)
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT with a `role` claim (`payment_admin`, `payment_operator`, `payment_viewer`, "
            "`payment_support`) and a `merchant` claim: the caller sees and changes only that merchant's jobs and "
            "subscriptions (another merchant's answer 404).  Required from an identity provider; a local-stack "
            "token without it acts for the merchant `default`.  `payments token --role R [--merchant M]` prints "
            "one for the local stack.",
        }
    }
    for methods in doc.get("paths", {}).values():
        for method, op in methods.items():
            _complete(method, op, schemas)
    _hoist_defs(doc, schemas)
    return doc


def _complete(method: str, op: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Parameters, security, description, request body component and responses of one operation."""
    spec = op.pop(_EXTENSION, None) or {"roles": None, "idempotent": False, "errors": [], "job": False}
    responses: dict[str, Any] = op.setdefault("responses", {})
    # FastAPI's own 422 ({"detail": [...]}) is never answered: every error is the envelope.
    responses.pop("422", None)
    params = [p for p in op.get("parameters", []) if p.get("in") != "header"]
    if spec["idempotent"]:
        params.append(copy.deepcopy(_IDEMPOTENCY_KEY_PARAMETER))
    params.append(copy.deepcopy(_REQUEST_ID_PARAMETER))
    params.extend(copy.deepcopy(spec.get("headers", [])))
    op["parameters"] = params

    roles = spec.get("roles")  # FastAPI drops None values from openapi_extra
    errors = {400, *spec["errors"]}
    if roles is not None:
        op["security"] = [{BEARER: []}]
        who = ", ".join(f"`{r}`" for r in roles)
        op["description"] = (
            op.get("description", "") + f"\n\n**Roles:** {who}.  Only the token's merchant's objects."
        ).strip()
        errors |= {401, 403, 503}
    else:
        op["security"] = []
    if method == "post":
        errors |= {413, 429}
    if spec["idempotent"]:
        errors |= {409, 422, 503}
    if "requestBody" in op:
        errors.add(422)
        _body_component(op, schemas)

    if spec.get("answer"):
        _put(schemas, spec["answer"], spec["answer_schema"])
    for name, schema in spec.get("models", {}).items():
        _put(schemas, name, schema)
    for status, answer in responses.items():
        if spec.get("answer") and status.startswith("2"):
            answer["content"] = {"application/json": {"schema": {"$ref": _COMPONENTS + spec["answer"]}}}
        answer.setdefault("headers", {})["X-Request-ID"] = _REQUEST_ID_HEADER
        if spec["job"] and status.startswith("2"):
            answer["headers"].update(_JOB_HEADERS)
        if spec.get("links") and status.startswith("2"):
            answer["links"] = copy.deepcopy(spec["links"])
    for status in sorted(errors):
        headers: dict[str, Any] = {"X-Request-ID": _REQUEST_ID_HEADER}
        if status == 401:
            headers["WWW-Authenticate"] = {"description": "`Bearer`.", **_STRING}
        if status in (429, 503):
            headers["Retry-After"] = _RETRY_AFTER_HEADER
        responses[str(status)] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "headers": headers,
            "content": {"application/json": {"schema": {"$ref": _COMPONENTS + ERROR_SCHEMA}}},
        }


def _body_component(op: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A JSON body model becomes a component named by its title, referenced from the operation."""
    content = op["requestBody"].get("content", {}).get("application/json")
    if content is None or "$ref" in content["schema"] or "title" not in content["schema"]:
        return
    schema = content["schema"]
    _put(schemas, schema["title"], schema)
    content["schema"] = {"$ref": _COMPONENTS + schema["title"]}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template=_COMPONENTS + "{model}")
    _put(schemas, model.__name__, schema)


def _put(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    """Add component ``name``, hoisting its ``$defs``; the same name twice must be the same schema."""
    schema = dict(schema)
    defs = schema.pop("$defs", {})
    for inner, inner_schema in defs.items():
        _put(schemas, inner, inner_schema)
    if name in schemas and schemas[name] != schema:
        if _without_nulls(schemas[name]) != _without_nulls(schema):
            raise ValueError(f"two different schemas are named {name!r} in the OpenAPI document")
        return  # the same model, once through openapi_extra (which drops None values): keep the first
    schemas[name] = schema


def _without_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(v) for v in node]
    return node


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> None:
    """Move any ``$defs`` left inside the document into the components and point ``#/$defs/X`` refs there."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None) if node is not schemas else None
        if defs:
            for name, schema in defs.items():
                _put(schemas, name, schema)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = _COMPONENTS + ref.removeprefix("#/$defs/")
        for value in list(node.values()):
            _hoist_defs(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, schemas)
