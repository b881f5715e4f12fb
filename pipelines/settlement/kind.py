"""The ``settlement`` job kind: a POS batch CSV in S3, settled: ingest → post → report."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.broker.queues import work_queue
from engine.errors import PoisonError
from engine.jobs.kind import JobKind
from pipelines.settlement import routes
from pipelines.settlement.request import SettlementRequest
from pipelines.settlement.stages import IngestStage, PostStage, ReportStage


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued settlement, normalised; :class:`PoisonError` when invalid."""
    try:
        request = SettlementRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PoisonError(f"invalid settlement request: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    return request.model_dump(mode="json", exclude_none=True)


KIND = JobKind(
    name="settlement",
    description="Run the settlement pipeline for the job this envelope carries.",
    # Message group: the uploading client.
    queue=work_queue("settlements", "settlement"),
    validate=validate,
    stages=(IngestStage, PostStage, ReportStage),
    routes=routes.build_router,
)
