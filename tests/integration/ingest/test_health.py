"""`/health` reports each dependency with its latency; errors take the API's one shape."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.ingest.app import create_app
from engine.ingest.internal import create_internal_app
from engine.runtime.liveness import WorkerHeartbeat


def test_the_public_health_is_a_verdict_alone(container) -> None:  # type: ignore[no-untyped-def]
    response = TestClient(create_app(container)).get("/health")
    assert response.status_code == 503 and response.json() == {"status": "degraded"}  # no worker: degraded
    ready = TestClient(create_app(container)).get("/health/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


def test_health_is_503_without_a_live_worker_then_200_with_one(container) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_internal_app(container))
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert set(body["checks"]) == {"database", "queues", "redis", "workers", "stripe"}
    assert body["checks"]["database"]["ok"] and body["checks"]["queues"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["workers"] == {**body["checks"]["workers"], "ok": False}
    assert isinstance(body["checks"]["database"]["latency_ms"], float)

    beat = WorkerHeartbeat(container.redis, container.redis_prefix)
    beat.start()
    try:
        response = client.get("/health")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "ok"
        assert response.json()["checks"]["workers"]["detail"] == "1 live"
    finally:
        beat.stop()
    assert client.get("/health").status_code == 503


def test_ready_needs_database_and_queues_only(container) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_internal_app(container))
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database", "queues"}
    assert TestClient(create_app(container)).get("/health/live").json() == {"status": "ok"}


def test_ready_is_503_when_queues_are_missing(container, engine_settings) -> None:  # type: ignore[no-untyped-def]
    from engine.runtime.container import Container
    from engine.runtime.endpoints import resolve_endpoints

    other = engine_settings.model_copy(update={"queue_prefix": "missing-"})
    client = TestClient(create_internal_app(Container(settings=other, endpoints=resolve_endpoints(other))))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["queues"]["ok"] is False


def test_unknown_route_has_the_error_shape(container) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(container))
    response = client.get("/v1/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"type": "invalid_request_error", "code": "not_found", "message": "Not Found"}}


def test_metrics_are_prometheus_text_on_the_internal_port_only(container) -> None:  # type: ignore[no-untyped-def]
    response = TestClient(create_internal_app(container)).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert TestClient(create_app(container)).get("/metrics").status_code == 404


def test_http_durations_are_labelled_by_route_template(container) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(container))
    client.get("/v1/jobs/job_abc")  # 401, but timed under its template, not the raw path
    text = TestClient(create_internal_app(container)).get("/metrics").text
    assert 'payments_http_request_duration_seconds_count{method="GET",route="/v1/jobs/{job_id}",status="401"}' in text
    assert "job_abc" not in text


def test_the_stripe_check_uses_the_api_and_the_breaker_not_sandbox_knobs(payment_container) -> None:  # type: ignore[no-untyped-def]
    """Against any Stripe-compatible server (issue 16: localstripe answered /_sim/config with 401): a real API call,
    and an open breaker makes it fail."""
    import engine.ingest.health as health

    assert "_sim" not in __import__("inspect").getsource(health._check_stripe)
    container = payment_container
    health._stripe_checked.clear()
    assert "breaker closed" in health._check_stripe(container)
    breaker = container.stripe.breaker
    for i in range(200):
        breaker.record_failure(f"job_{i}", dependency_wide=True, server_error=True)
        if breaker.state == "open":
            break
    assert breaker.state == "open"
    try:
        health._check_stripe(container)
    except RuntimeError as exc:
        assert "circuit breaker open" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("an open breaker must fail the check")
    finally:
        breaker.record_success()
