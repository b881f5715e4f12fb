"""The ``report`` job kind: a report from the ledger into the reports bucket, generate → tidy → notify; and the
scheduler's ``ecb-rates`` task, which keeps the ECB rates the OSS return converts at."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from engine.broker.queues import work_queue
from engine.errors import PoisonError
from engine.jobs.kind import JobKind, Task
from engine.jobs.notify import NotifyStage
from engine.ops import rates_fetch
from engine.reports.generate import ReportRequestError
from pipelines.report import routes
from pipelines.report.generate import GenerateStage, TidyStage
from pipelines.report.request import ReportRequest, request_of


def validate(data: dict[str, Any]) -> dict[str, Any]:
    """The request of an upstream-enqueued report, normalised; :class:`PoisonError` when it is malformed or asks
    for a period that has not started."""
    try:
        spec = ReportRequest.model_validate(data).spec(datetime.now(UTC).date())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PoisonError(f"invalid report request: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    except ReportRequestError as exc:
        raise PoisonError(f"invalid report request: {exc.param}: {exc.message}") from exc
    return request_of(spec)


KIND = JobKind(
    name="report",
    description="Generate the report this envelope asks for and link its files.",
    # Message group: the requesting client.
    queue=work_queue("reports", "report"),
    validate=validate,
    stages=(GenerateStage, TidyStage, NotifyStage),
    routes=routes.build_router,
    # The ECB publishes once a working day; hourly is soon enough and costs one small GET (off by default).
    tasks=(Task("ecb-rates", 3600.0, rates_fetch.run_task),),
)
