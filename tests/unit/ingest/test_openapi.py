"""The ingest's /openapi.json is a valid OpenAPI document that client generators can use (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from config.settings import Settings
from engine.ingest.schemas import ErrorEnvelope
from engine.runtime.container import Container
from engine.runtime.endpoints import Endpoints

ERROR_REF = "#/components/schemas/ErrorEnvelope"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    from engine.ingest.app import create_app

    # No service is reachable: the document and the checks before any database work need none.
    endpoints = Endpoints(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", sqs_endpoint_url=None, s3_endpoint_url=None,
        redis_url=None, stripe_api_base=None, stripe_api_key=None, aws_region="eu-west-1", embedded_aws=True,
    )  # fmt: skip
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("openapi")), rate_limit_per_minute=0)
    return create_app(Container(settings=settings, endpoints=endpoints))


@pytest.fixture(scope="module")
def doc(app: FastAPI) -> dict[str, Any]:
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, methods in doc["paths"].items() for method, op in methods.items()]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} points nowhere"
        node = node[part]
    return node


def test_the_document_is_valid_and_every_ref_resolves(doc: dict[str, Any]) -> None:
    validate(doc)  # openapi-spec-validator: raises on an invalid document
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        _resolve(doc, ref)
    assert "$defs" not in str(doc)
    body = doc["paths"]["/v1/payments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    customer = _resolve(doc, body["$ref"])["properties"]["customer"]
    assert _resolve(doc, customer["$ref"])["properties"]["country"]


def test_every_error_is_the_envelope_and_fastapis_422_is_gone(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert _resolve(doc, ERROR_REF)["required"] == ["error"]
    assert set(_resolve(doc, "#/components/schemas/ErrorDetail")["required"]) == {"type", "code", "message"}
    for path, _method, op in _operations(doc):
        for status, answer in op["responses"].items():
            if status.startswith(("4", "5")) and not path.startswith("/health"):
                assert answer["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (path, status)
                assert "detail" not in str(answer)
    ops = {(m, p): op for p, m, op in _operations(doc)}
    payment = set(ops[("post", "/v1/payments")]["responses"])
    assert payment == {"202", "400", "401", "403", "409", "413", "422", "429", "503"}
    assert {"404"} <= set(ops[("post", "/v1/refunds")]["responses"])
    assert {"415"} <= set(ops[("post", "/v1/settlements")]["responses"])
    assert set(ops[("get", "/v1/jobs/{job_id}")]["responses"]) == {"200", "400", "401", "403", "404", "503"}
    assert "401" not in ops[("post", "/webhooks/stripe")]["responses"]
    unauthorized = ops[("get", "/v1/jobs/{job_id}")]["responses"]["401"]
    assert "WWW-Authenticate" in unauthorized["headers"]
    assert "Retry-After" in ops[("post", "/v1/payments")]["responses"]["429"]["headers"]


def test_the_envelope_model_matches_what_the_api_answers(app: FastAPI) -> None:
    answer = TestClient(app).get("/v1/jobs/job_x")
    assert answer.status_code == 401
    ErrorEnvelope.model_validate(answer.json())


def test_bearer_security_roles_headers_and_operation_ids(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    ids = [op["operationId"] for _, _, op in _operations(doc)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z][A-Za-z]+", i) for i in ids), ids
    assert {
        "createPayment",
        "createPaymentBatch",
        "getJob",
        "listJobs",
        "createRefund",
        "reviewJob",
        "createSettlement",
    } <= set(ids)
    for path, method, op in _operations(doc):
        headers = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
        assert headers["X-Request-ID"]["required"] is False, path
        if path.startswith("/v1"):
            assert op["security"] == [{"bearer": []}], path
            assert "**Roles:** `payment_admin`" in op["description"], path
        else:
            assert op["security"] == [], path
        creates_job = method == "post" and path.startswith("/v1") and not path.endswith("/review")
        assert ("Idempotency-Key" in headers) is creates_job, path
        if creates_job:
            assert headers["Idempotency-Key"]["required"] is True
        if creates_job and not path.endswith("/batch"):  # a batch answers 207, one result per item
            accepted = op["responses"]["202"]["headers"]
            assert {"Location", "Idempotent-Replayed", "X-Request-ID"} <= set(accepted), path
    webhook = {p["name"]: p for p in doc["paths"]["/webhooks/stripe"]["post"]["parameters"]}
    assert webhook["Stripe-Signature"]["required"] is True and webhook["Stripe-Signature"]["in"] == "header"
    support_roles = doc["paths"]["/v1/refunds"]["post"]["description"]
    assert "`payment_support`" in support_roles and "`payment_viewer`" not in support_roles


def test_metrics_is_not_in_the_public_document(doc: dict[str, Any], app: FastAPI) -> None:
    # /metrics is served on the internal port only (engine/ingest/internal.py), which publishes no document.
    assert not any("metrics" in path for path in doc["paths"])
    assert TestClient(app).get("/metrics").status_code == 404


def test_a_401_asks_for_a_bearer_token(app: FastAPI) -> None:
    client = TestClient(app)
    missing = client.post("/v1/payments", json={}, headers={"Idempotency-Key": "k-1"})
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.get("/v1/jobs", headers={"Authorization": "Bearer not-a-jwt"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.json()["error"]["code"] == "unauthenticated"


def test_job_answers_are_typed_and_their_examples_validate(doc: dict[str, Any]) -> None:
    from engine.ingest.schemas import Job, JobList

    def answer(path: str, method: str, status: str) -> Any:
        return doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert answer("/v1/payments", "post", "202") == {"$ref": "#/components/schemas/Job"}
    assert answer("/v1/jobs/{job_id}", "get", "200") == {"$ref": "#/components/schemas/Job"}
    assert answer("/v1/jobs", "get", "200") == {"$ref": "#/components/schemas/JobList"}
    for name, model in (("Job", Job), ("JobList", JobList), ("ErrorEnvelope", ErrorEnvelope)):
        examples = doc["components"]["schemas"][name]["examples"]
        assert examples
        for example in examples:
            model.model_validate(example)


def test_a_405_names_the_allowed_methods(app: FastAPI) -> None:
    # RFC 9110: a 405 carries Allow (schemathesis' unsupported_method check found it missing).
    answer = TestClient(app).request("TRACE", "/v1/jobs")
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"
    assert {m.strip() for m in answer.headers["Allow"].split(",")} >= {"GET"}


def test_every_operation_is_typed_and_has_examples(doc: dict[str, Any]) -> None:
    def examples_of(media: dict[str, Any]) -> list[Any]:
        own = [media["example"]] if "example" in media else list(media.get("examples", {}).values())
        schema = media["schema"]
        if "$ref" in schema:
            schema = _resolve(doc, schema["$ref"])
        return own + list(schema.get("examples", []))

    for path, method, op in _operations(doc):
        if "requestBody" in op:
            for media in op["requestBody"]["content"].values():
                assert examples_of(media), (path, method, "request")
        answers = [(s, a) for s, a in op["responses"].items() if s.startswith("2")]
        assert answers, (path, method)
        for status, answer in answers:
            media = answer["content"]["application/json"]
            assert media["schema"] not in ({}, {"type": "object"}), (path, method, status)
            assert examples_of(media), (path, method, status)


def test_accepted_jobs_link_to_the_job_and_subscriptions_to_the_subscription(doc: dict[str, Any]) -> None:
    links = doc["paths"]["/v1/payments"]["post"]["responses"]["202"]["links"]
    assert links["getJob"]["operationId"] == "getJob"
    assert links["getJob"]["parameters"] == {"job_id": "$response.body#/id"}
    assert links["reviewJob"]["operationId"] == "reviewJob"
    created = doc["paths"]["/v1/subscriptions"]["post"]["responses"]["202"]["links"]
    assert created["getSubscription"]["parameters"] == {"subscription_id": "$response.body#/subscription/id"}
    ids = {op["operationId"] for _, _, op in _operations(doc)}
    for _, _, op in _operations(doc):
        for answer in op["responses"].values():
            for link in answer.get("links", {}).values():
                assert link["operationId"] in ids, link
