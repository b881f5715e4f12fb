"""Settlement fixtures: the ingest app, the settlement pipeline, and helpers to upload and settle a batch."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from config.settings import SettlementSettings
from engine.adapters.auth import mint
from engine.broker.envelope import Envelope
from engine.jobs.job import Job
from engine.jobs.pipeline import Pipeline, PipelineRunner
from pipelines.settlement.stages import IngestStage, PostStage, ReportStage


@pytest.fixture
def api(container) -> TestClient:  # type: ignore[no-untyped-def]
    from engine.ingest.app import create_app

    return TestClient(create_app(container))


@pytest.fixture
def headers(engine_settings) -> Callable[..., dict[str, str]]:  # type: ignore[no-untyped-def]
    def make(role: str = "operator", key: str | None = None, sub: str = "pos-uploader") -> dict[str, str]:
        h = {"Authorization": f"Bearer {mint(engine_settings, role, sub=sub, ttl_seconds=600)}"}
        h["Content-Type"] = "text/csv"
        h["Idempotency-Key"] = key if key is not None else uuid.uuid4().hex
        return h

    return make


@pytest.fixture
def terminal() -> str:
    """A terminal-id prefix private to one test (the settled-transactions table is shared by the session)."""
    return f"T{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settle(container) -> Callable[..., Job]:  # type: ignore[no-untyped-def]
    """Run the settlement pipeline for a job id, as the worker would (``chunk_rows`` and ``on_row`` adjustable)."""

    def run(
        job_id: str, *, chunk_rows: int = 50_000, on_row: Callable[[int], None] | None = None, fee_bps: int = 0
    ) -> Job:
        settings = container.settings.model_copy(update={"settlement": SettlementSettings(fee_bps=fee_bps)})
        stages = (
            container.build(IngestStage, settings=settings, chunk_rows=chunk_rows, on_row=on_row),
            container.build(PostStage, settings=settings),
            container.build(ReportStage, settings=settings),
        )
        return PipelineRunner(container.db, Pipeline("settlement", stages)).run(job_id)

    return run


def csv_body(rows: Iterable[Iterable[Any]], header: str | None = None) -> bytes:
    head = header or (
        "terminal_id,transaction_id,timestamp,type,amount,currency,card_last4,auth_code,original_transaction_id"
    )
    lines = [head] + [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def envelope_for(job: dict[str, Any]) -> dict[str, Any]:
    """The envelope the ingest enqueued for ``job`` (same job id), for Container.run_job."""
    return Envelope.new(
        kind="settlement",
        data={"key": job["batch"]["object"].split("/", 3)[3]},
        idempotency_scope=f"test:{job['id']}",
        group_id="pos-uploader",
        job_id=job["id"],
    ).to_arg()
