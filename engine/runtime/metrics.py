"""Prometheus metrics of the engine, multiprocess-aware.

Several worker processes aggregate on one scrape when ``PROMETHEUS_MULTIPROC_DIR`` is set (`payments run` sets it
for its children and wipes it at start).  Names follow Prometheus conventions: base units, ``_total`` counters,
low-cardinality labels (never a job, customer or payment id).
"""

from __future__ import annotations

import os
import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

JOBS = Counter("payments_jobs_total", "Jobs that reached a resting status.", ["kind", "outcome"])
STAGE_SECONDS = Histogram(
    "payments_stage_duration_seconds", "Time spent in a pipeline stage.", ["pipeline", "stage"], buckets=_BUCKETS
)
HTTP_SECONDS = Histogram(
    "payments_http_request_duration_seconds",
    "Ingest HTTP request duration.",
    ["route", "method", "status"],
    buckets=_BUCKETS,
)
QUEUE_MESSAGES = Gauge(
    "payments_queue_messages",
    "Messages per queue and state (visible, in_flight, delayed, dlq).",
    ["queue", "state"],
    multiprocess_mode="mostrecent",
)
STRIPE_REQUESTS = Counter("payments_stripe_requests_total", "Stripe API requests.", ["operation", "outcome"])
STRIPE_SECONDS = Histogram(
    "payments_stripe_request_duration_seconds", "Stripe API request latency.", ["operation"], buckets=_BUCKETS
)
CIRCUIT_OPEN = Gauge(
    "payments_circuit_open", "1 while a dependency's circuit breaker is open.", ["dependency"], multiprocess_mode="max"
)
# Known dependencies start at 0 (closed), so the series is on every scrape from the start: a breaker that never
# changed state would otherwise be absent, and a dashboard would show "no data" instead of "closed".
CIRCUIT_OPEN.labels("stripe")
RATE_LIMITER_UNAVAILABLE = Counter(
    "payments_rate_limiter_unavailable_total",
    "Ingest requests the rate limiter could not count (Redis unreachable): let through or refused per setting.",
)
AMOUNT = Counter(
    "payments_amount_minor_units_total", "Amounts of succeeded payments, in minor units.", ["currency", "kind"]
)
STALE_COPIES = Counter(
    "payments_stale_copies_total", "Copies of a job that lost the race to another copy and stopped.", ["kind"]
)
STRIPE_INCIDENTS = Counter(
    "payments_stripe_incidents_total",
    "Money incidents found at Stripe (several live objects for one job, an amount or currency that differs).",
    ["kind", "incident"],
)
DISPUTES = Counter(
    "payments_disputes_total",
    "Stripe dispute events handled, by event type and outcome (booked; unmatched: no payment job knows the charge).",
    ["event", "outcome"],
)
STUCK_JOBS = Gauge(
    "payments_jobs_stuck",
    "Jobs not terminal and without progress for the reconcile threshold.",
    [],
    multiprocess_mode="mostrecent",
)
WEBHOOKS = Counter("payments_webhooks_total", "Incoming Stripe webhook deliveries by outcome.", ["outcome"])
STRIPE_UNRESOLVED_AGE = Gauge(
    "payments_stripe_unresolved_age_seconds",
    "Age of the oldest payment awaiting Stripe's outcome.",
    ["status"],
    multiprocess_mode="mostrecent",
)
STRIPE_RECONCILE_FINDINGS = Gauge(
    "payments_stripe_reconcile_findings",
    "Discrepancies between the ledger and Stripe found by the last daily reconciliation, by kind.",
    ["kind"],
    multiprocess_mode="mostrecent",
)

REPORT_SECONDS = Histogram(
    "payments_report_duration_seconds",
    "Time to compute a report and write its files, by report type and outcome (succeeded, failed, error).",
    ["type", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
SCHEDULER_RUNS = Counter(
    "payments_scheduler_runs_total", "Scheduler task runs by outcome (ok, failed).", ["task", "outcome"]
)
SCHEDULER_LAST_SUCCESS = Gauge(
    "payments_scheduler_last_success_timestamp_seconds",
    "When each scheduler task last finished without an error (Unix time).",
    ["task"],
    multiprocess_mode="max",
)
SCHEDULER_LAST_RUN_SECONDS = Gauge(
    "payments_scheduler_last_run_duration_seconds",
    "How long each scheduler task's last run took.",
    ["task"],
    multiprocess_mode="mostrecent",
)
SCHEDULER_INTERVAL = Gauge(
    "payments_scheduler_interval_seconds",
    "Each scheduler task's interval (the staleness alert allows three of them).",
    ["task"],
    multiprocess_mode="max",
)
REPORT_ROWS = Counter("payments_report_rows_total", "Data rows written to report files (CSV and JSON).", ["type"])


def forget_process(pid: int, directory: str | None = None) -> None:
    """Tell prometheus-client's multiprocess mode that ``pid`` is dead, so its live gauges stop being exposed
    (``mark_process_dead``); a no-op outside multiprocess mode.  ``directory`` defaults to
    ``PROMETHEUS_MULTIPROC_DIR``."""
    path = directory or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)


def registry() -> CollectorRegistry:
    """The registry to expose: an aggregating one in multiprocess mode, else the default."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        aggregated = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregated)
        return aggregated
    return REGISTRY


def render_latest() -> tuple[bytes, str]:
    """The current metrics in Prometheus text format, and its content type."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


_server_lock = threading.Lock()
_server_started = False


def serve(port: int, host: str = "127.0.0.1") -> bool:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread (once per process); False if the port is taken."""
    global _server_started
    from prometheus_client import start_http_server

    with _server_lock:
        if _server_started:
            return True
        try:
            start_http_server(port, addr=host, registry=registry())
        except OSError:
            return False
        _server_started = True
        return True
