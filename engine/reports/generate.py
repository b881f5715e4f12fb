"""Generate a report: check what is asked, compute it on one snapshot, stream its files into sinks.

Reports (docs/reports.md):

========== ============================== =====================================================================
type       asks for                       files
========== ============================== =====================================================================
oss_return ``period``: a quarter           ``oss-return.json`` (every sale and refund read, then the return),
                                          ``oss-return-transactions.csv``, ``oss-return.csv`` (the return's
                                          lines), ``oss-return.pdf``
revenue    ``period``: quarter, month, day ``revenue.json``, ``revenue.csv`` (one row per day and currency)
           ``currency``: optional
settlement ``date``: a day                 ``settlement.json``, ``settlement.csv`` (per clearing account)
========== ============================== =====================================================================

A sink receives one file's bytes as they are produced and is closed only when every file of the report is
complete; on any failure every sink is aborted, so a report is stored whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa

from engine.domain.money import UnknownCurrency
from engine.domain.money import currency as currency_of
from engine.errors import InvalidInput
from engine.reports.oss import LINE_COLUMNS, TRANSACTION_COLUMNS, compute_oss_return
from engine.reports.pdf import render_oss_return
from engine.reports.periods import Period, PeriodError, PeriodKind, check_started, parse_period
from engine.reports.revenue import ROW_COLUMNS as REVENUE_COLUMNS
from engine.reports.revenue import compute_revenue
from engine.reports.settlement import ROW_COLUMNS as SETTLEMENT_COLUMNS
from engine.reports.settlement import compute_settlement
from engine.reports.writers import CsvStream, JsonStream

#: Report type → (the field naming its period, the period kinds it takes).
REPORT_TYPES: dict[str, tuple[str, tuple[PeriodKind, ...]]] = {
    "oss_return": ("period", ("quarter",)),
    "revenue": ("period", ("quarter", "month", "day")),
    "settlement": ("date", ("day",)),
}


class ReportRequestError(InvalidInput):
    """A report request that cannot be generated: ``param`` names the field, ``code`` says why
    (``report_type_unknown``, ``period_invalid``, ``period_not_started``, ``currency_invalid``,
    ``field_not_allowed``)."""

    def __init__(self, message: str, param: str, code: str) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


@dataclass(frozen=True)
class ReportSpec:
    """What to generate: a ``type``, its ``period`` and, for the revenue report, an optional ``currency``."""

    type: str
    period: Period
    currency: str | None = None

    def to_json(self) -> dict[str, Any]:
        field_name = REPORT_TYPES[self.type][0]
        return {"type": self.type, field_name: self.period.label, "currency": self.currency}


def parse_spec(
    type: object, *, period: object = None, day: object = None, currency: object = None, today: date
) -> ReportSpec:
    """Check a request (``{"type", "period" | "date", "currency"?}``) and return what it asks for.

    Raises :class:`ReportRequestError` naming the field: an unknown type, a missing, malformed or not yet started
    period or date, a field the type does not take, an unknown currency.
    """
    if not isinstance(type, str) or type not in REPORT_TYPES:
        known = ", ".join(REPORT_TYPES)
        raise ReportRequestError(f"type {type!r} is not a report type (one of {known})", "type", "report_type_unknown")
    field_name, kinds = REPORT_TYPES[type]
    given, other = (period, day) if field_name == "period" else (day, period)
    if other is not None:
        wrong = "date" if field_name == "period" else "period"
        raise ReportRequestError(f"a {type} report takes {field_name}, not {wrong}", wrong, "field_not_allowed")
    if currency is not None and type != "revenue":
        raise ReportRequestError(f"a {type} report takes no currency", "currency", "field_not_allowed")
    try:
        found = parse_period(given, kinds, field_name)
        check_started(found, today, field_name)
    except PeriodError as exc:
        raise ReportRequestError(exc.message, exc.param, exc.code) from exc
    code = None
    if currency is not None:
        try:
            code = currency_of(currency).code  # type: ignore[arg-type]
        except UnknownCurrency:
            raise ReportRequestError(
                f"currency {currency!r} is not a currency", "currency", "currency_invalid"
            ) from None
    return ReportSpec(type, found, code)


class FileSink(Protocol):
    """Where one file of a report goes (an S3 object being written, a local file)."""

    def write(self, data: bytes, /) -> Any: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


OpenSink = Callable[[str, str], FileSink]  # (file name, content type) → sink


@dataclass(frozen=True)
class ReportFile:
    """One file written: its name, content type and the data rows it holds (None for a PDF)."""

    name: str
    content_type: str
    rows: int | None


@dataclass
class GeneratedReport:
    """A generated report: its summary (the JSON's fields), the files written, how many ledger transactions were
    read, and whether it is preliminary and agrees with the ledger's accounts."""

    spec: ReportSpec
    summary: dict[str, Any]
    files: list[ReportFile] = field(default_factory=list)
    transactions: int = 0
    preliminary: bool = False
    agrees: bool = True


class _Files:
    """The sinks of one report: opened as needed, all closed together or all aborted."""

    def __init__(self, open_sink: OpenSink) -> None:
        self._open = open_sink
        self._sinks: list[FileSink] = []
        self.written: list[ReportFile] = []

    def open(self, name: str, content_type: str) -> FileSink:
        sink = self._open(name, content_type)
        self._sinks.append(sink)
        return sink

    def done(self, name: str, content_type: str, rows: int | None) -> None:
        self.written.append(ReportFile(name, content_type, rows))

    def close_all(self) -> None:
        for sink in self._sinks:
            sink.close()

    def abort_all(self) -> None:
        for sink in self._sinks:
            sink.abort()


def generate(
    conn: sa.Connection, spec: ReportSpec, *, seller_country: str, today: date, open_sink: OpenSink
) -> GeneratedReport:
    """Compute ``spec`` on ``conn`` (one read-only snapshot: :func:`engine.reports.database.snapshot`) and write
    its files through ``open_sink``.

    Raises :class:`~engine.domain.conversion.RateMissing` (an OSS return without a needed ECB rate),
    :class:`sqlalchemy.exc.SQLAlchemyError`, or whatever a sink raises; every sink is aborted then.
    """
    files = _Files(open_sink)
    try:
        if spec.type == "oss_return":
            report = _oss(conn, spec, seller_country, today, files)
        elif spec.type == "revenue":
            report = _revenue(conn, spec, files)
        else:
            report = _settlement(conn, spec, files)
        files.close_all()
    except BaseException:
        files.abort_all()
        raise
    report.files = files.written
    return report


def _oss(conn: sa.Connection, spec: ReportSpec, seller: str, today: date, files: _Files) -> GeneratedReport:
    doc = JsonStream(files.open("oss-return.json", "application/json"))
    detail = CsvStream(files.open("oss-return-transactions.csv", "text/csv"), TRANSACTION_COLUMNS)
    doc.field("type", "oss_return")
    doc.begin_array("ledger_lines")

    def each(row: dict[str, Any]) -> None:
        doc.item(row)
        detail.write(row)

    result = compute_oss_return(conn, spec.period, seller_country=seller, today=today, on_transaction=each)
    doc.end_array()
    summary = result.to_json()
    doc.fields({k: v for k, v in summary.items() if k != "type"})
    doc.close()
    detail.close()
    files.done("oss-return.json", "application/json", doc.items)
    files.done("oss-return-transactions.csv", "text/csv", detail.rows)
    lines = CsvStream(files.open("oss-return.csv", "text/csv"), LINE_COLUMNS)
    lines.write_all(result.lines())
    lines.close()
    files.done("oss-return.csv", "text/csv", lines.rows)
    files.open("oss-return.pdf", "application/pdf").write(render_oss_return(summary))
    files.done("oss-return.pdf", "application/pdf", None)
    return GeneratedReport(spec, summary, [], result.transactions, result.preliminary, result.agrees)


def _revenue(conn: sa.Connection, spec: ReportSpec, files: _Files) -> GeneratedReport:
    result = compute_revenue(conn, spec.period, spec.currency)
    summary = result.to_json()
    doc = JsonStream(files.open("revenue.json", "application/json"))
    doc.fields({k: v for k, v in summary.items() if k != "days"})
    doc.begin_array("days")
    for line in result.lines():
        doc.item(line)
    doc.close()
    files.done("revenue.json", "application/json", doc.items)
    rows = CsvStream(files.open("revenue.csv", "text/csv"), REVENUE_COLUMNS)
    rows.write_all(result.lines())
    rows.close()
    files.done("revenue.csv", "text/csv", rows.rows)
    return GeneratedReport(spec, summary, [], result.transactions, False, result.agrees)


def _settlement(conn: sa.Connection, spec: ReportSpec, files: _Files) -> GeneratedReport:
    result = compute_settlement(conn, spec.period)
    summary = result.to_json()
    doc = JsonStream(files.open("settlement.json", "application/json"))
    doc.fields(summary)
    doc.close()
    files.done("settlement.json", "application/json", len(result.rows))
    rows = CsvStream(files.open("settlement.csv", "text/csv"), SETTLEMENT_COLUMNS)
    rows.write_all(result.lines())
    rows.close()
    files.done("settlement.csv", "text/csv", rows.rows)
    return GeneratedReport(spec, summary, [], result.transactions, False, result.agrees)
