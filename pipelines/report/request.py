"""The report request (``POST /v1/reports``, ``payments report`` and upstream-enqueued report messages).

The shape is checked by :class:`ReportRequest`; what the fields mean (a known type, a period of the right kind that
has started, a currency) by :func:`engine.reports.generate.parse_spec`, which names the offending field.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from engine.reports.generate import ReportSpec, parse_spec


class ReportRequest(BaseModel):
    """``{"type": "oss_return", "period": "2026-Q4"}``, ``{"type": "revenue", "period": "2026-11", "currency":
    "EUR"}`` (``currency`` optional), ``{"type": "settlement", "date": "2026-11-30"}``."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        populate_by_name=True,
        json_schema_extra={"examples": [{"type": "revenue", "period": "2026-11", "currency": "EUR"}]},
    )

    type: Annotated[str, Field(min_length=1, max_length=40, description="oss_return, revenue or settlement.")]
    period: Annotated[
        str | None, Field(default=None, max_length=20, description="A quarter (2026-Q4), month (2026-11) or day.")
    ]
    day: Annotated[
        str | None, Field(default=None, alias="date", max_length=20, description="A day (settlement): 2026-11-30.")
    ]
    currency: Annotated[str | None, Field(default=None, max_length=8, description="Revenue only: one currency.")]

    def spec(self, today: date) -> ReportSpec:
        """What the request asks for.  Raises :class:`engine.reports.generate.ReportRequestError` naming the field
        (``param``) and saying why (``code``)."""
        return parse_spec(self.type, period=self.period, day=self.day, currency=self.currency, today=today)


def request_of(spec: ReportSpec) -> dict[str, Any]:
    """The job's normalised request for ``spec``: ``{"type", "period" | "date", "currency"?}`` (the period as
    :class:`~engine.reports.periods.Period` labels it, the currency in lower case)."""
    return {k: v for k, v in spec.to_json().items() if v is not None}
