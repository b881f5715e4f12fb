"""Accepting a report job: what ``POST /v1/reports`` and ``payments report`` share."""

from __future__ import annotations

from typing import Any

from engine.domain.merchant import DEFAULT_MERCHANT
from engine.ingest.accept import JobAcceptor
from engine.ingest.idempotency import SavedAnswer, canonical_hash
from engine.reports.generate import ReportSpec
from pipelines.report.request import request_of

PATH = "/v1/reports"


def accept_report(
    acceptor: JobAcceptor,
    spec: ReportSpec,
    body: dict[str, Any],
    *,
    client: str,
    key: str,
    correlation_id: str | None,
    merchant: str = DEFAULT_MERCHANT,
) -> SavedAnswer:
    """Accept the report job ``spec`` asked for with ``body`` by ``client`` under Idempotency-Key ``key``: 202 with
    the job, or the saved answer of an earlier request with that key.

    The idempotency hash is the one of ``POST /v1/reports`` with ``body``, so the CLI and the API replay each
    other's answers for one client and key.  Raises what :meth:`JobAcceptor.accept` raises (``ApiError`` 422
    ``idempotency_key_reused``, 409 ``idempotency_key_in_use``, 503 ``unavailable``).
    """
    request = request_of(spec)
    return acceptor.accept(
        client=client,
        merchant=merchant,
        key=key,
        request_hash=canonical_hash("POST", PATH, body),
        kind="report",
        data=request,
        # The client's group: one client's reports run one after another, other clients' beside them.
        group_key=f"reports:{client}",
        customer_id=None,
        correlation_id=correlation_id,
        public={"report": request},
    )
