"""Generating report files through sinks on one read-only snapshot; a failure leaves no file behind; the reports'
own engine reads the replica when one is configured."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.settings import Settings
from engine.domain.conversion import RateMissing
from engine.reports.database import APPLICATION_NAME, reports_engine, reports_url, snapshot
from engine.reports.generate import generate, parse_spec
from engine.runtime.endpoints import resolve_endpoints
from tests.integration.reports.conftest import book_at, import_real_rates
from tests.integration.reports.test_oss_return import at, book_scenario, sale

pytestmark = pytest.mark.integration

TODAY = date(2024, 10, 15)


class MemorySink:
    """A sink keeping what it was given; records whether it was closed or aborted."""

    def __init__(self, name: str, content_type: str, log: dict[str, MemorySink]) -> None:
        self.name, self.content_type = name, content_type
        self.buffer = io.BytesIO()
        self.state = "open"
        self.writes = 0
        log[name] = self

    def write(self, data: bytes) -> None:
        assert self.state == "open"
        self.buffer.write(data)
        self.writes += 1

    def close(self) -> None:
        self.state = "closed"

    def abort(self) -> None:
        self.state = "aborted"

    @property
    def data(self) -> bytes:
        return self.buffer.getvalue()


def test_the_oss_return_files(db: sa.Engine, fresh_database: str) -> None:
    book_scenario(db)
    sinks: dict[str, MemorySink] = {}
    spec = parse_spec("oss_return", period="2024-Q2", today=TODAY)
    with snapshot(reports_engine(fresh_database)) as conn:
        report = generate(conn, spec, seller_country="IE", today=TODAY, open_sink=lambda n, t: MemorySink(n, t, sinks))
    assert [(f.name, f.content_type) for f in report.files] == [
        ("oss-return.json", "application/json"),
        ("oss-return-transactions.csv", "text/csv"),
        ("oss-return.csv", "text/csv"),
        ("oss-return.pdf", "application/pdf"),
    ]
    assert all(s.state == "closed" for s in sinks.values())
    doc = json.loads(sinks["oss-return.json"].data)
    assert doc["type"] == "oss_return" and doc["total_vat_eur"] == report.summary["total_vat_eur"] == 13_386
    # Every sale and refund read is in the JSON and in the transactions CSV, one row each.
    detail = list(csv.DictReader(io.StringIO(sinks["oss-return-transactions.csv"].data.decode())))
    assert len(detail) == len(doc["ledger_lines"]) == report.files[1].rows == 17
    assert {row["part"] for row in detail} >= {"oss", "oss_refund", "reverse_charge", "domestic", "outside_scope"}
    refund = next(row for row in detail if row["part"] == "oss_refund")
    assert (refund["country"], refund["taxable"], refund["vat"]) == ("SE", "-10000", "-2500")
    lines = list(csv.DictReader(io.StringIO(sinks["oss-return.csv"].data.decode())))
    se = next(row for row in lines if row["section"] == "supply" and row["country"] == "SE")
    assert (se["taxable_eur"], se["vat_eur"], se["exchange_rate"]) == ("10850", "2712", "11.3675")
    assert {row["section"] for row in lines} == {
        "supply", "excluded:domestic", "excluded:reverse_charge", "excluded:outside_scope"
    }  # fmt: skip
    assert sinks["oss-return.pdf"].data.startswith(b"%PDF-")
    assert (report.transactions, report.preliminary, report.agrees) == (17, False, True)


def test_the_pdf_is_the_same_document_when_rendered_twice(db: sa.Engine, fresh_database: str) -> None:
    book_scenario(db)
    pdfs = []
    for _ in range(2):
        sinks: dict[str, MemorySink] = {}
        with snapshot(reports_engine(fresh_database)) as conn:
            generate(
                conn,
                parse_spec("oss_return", period="2024-Q3", today=TODAY),
                seller_country="IE",
                today=TODAY,
                open_sink=lambda n, t, s=sinks: MemorySink(n, t, s),  # type: ignore[misc]
            )
        pdfs.append(sinks["oss-return.pdf"].data)
    assert pdfs[0] == pdfs[1]


def test_a_missing_rate_aborts_every_file(db: sa.Engine, fresh_database: str) -> None:
    import_real_rates(db)
    with db.begin() as conn:
        book_at(conn, sale("p_pl_q3", "pln", 20_000, 4_600, "PL", "23", "oss"), at(8, 1))
    sinks: dict[str, MemorySink] = {}
    with snapshot(reports_engine(fresh_database)) as conn, pytest.raises(RateMissing, match="PLN on 2024-09-30"):
        generate(
            conn,
            parse_spec("oss_return", period="2024-Q3", today=TODAY),
            seller_country="IE",
            today=TODAY,
            open_sink=lambda n, t: MemorySink(n, t, sinks),
        )
    assert sinks and all(s.state == "aborted" for s in sinks.values())


def test_revenue_and_settlement_files(db: sa.Engine, fresh_database: str) -> None:
    book_scenario(db)
    for spec, names in [
        (parse_spec("revenue", period="2024-06", currency="EUR", today=TODAY), ["revenue.json", "revenue.csv"]),
        (parse_spec("settlement", day="2024-06-20", today=TODAY), ["settlement.json", "settlement.csv"]),
    ]:
        sinks: dict[str, MemorySink] = {}
        with snapshot(reports_engine(fresh_database)) as conn:
            report = generate(
                conn,
                spec,
                seller_country="IE",
                today=TODAY,
                open_sink=lambda n, t, s=sinks: MemorySink(n, t, s),  # type: ignore[misc]
            )
        assert [f.name for f in report.files] == names
        doc = json.loads(sinks[names[0]].data)
        assert doc["type"] == spec.type and doc["agrees_with_ledger"] is True
        rows = list(csv.DictReader(io.StringIO(sinks[names[1]].data.decode())))
        assert len(rows) == report.files[1].rows and rows
    assert json.loads(sinks["settlement.json"].data)["clearing"][0]["net"] == 18_310


def test_report_sessions_are_read_only_named_and_repeatable_read(fresh_database: str) -> None:
    with snapshot(reports_engine(fresh_database)) as conn:
        name, level, read_only = conn.execute(
            sa.text(
                "SELECT current_setting('application_name'), current_setting('transaction_isolation'), "
                "current_setting('transaction_read_only')"
            )
        ).one()
        assert (name, level, read_only) == (APPLICATION_NAME, "repeatable read", "on")
        with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
            conn.execute(sa.text("CREATE TABLE nope (id int)"))


def test_reports_read_the_replica_when_one_is_set(tmp_path: Path, database_url: str, fresh_database: str) -> None:
    primary = Settings(data_dir=tmp_path / "var", database={"url": database_url})
    assert reports_url(primary, resolve_endpoints(primary)) == database_url
    replicated = Settings(data_dir=tmp_path / "var", database={"url": database_url, "replica_url": fresh_database})
    assert reports_url(replicated, resolve_endpoints(replicated)) == fresh_database
    assert "replica_url" in replicated.masked()["database"]
    with snapshot(reports_engine(reports_url(replicated, resolve_endpoints(replicated)))) as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == fresh_database.rpartition("/")[2]
