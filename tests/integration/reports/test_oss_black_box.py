"""The OSS return checked from the outside (issue 19, "How it will be checked").

Payments in EUR, SEK, PLN, HUF and CZK to consumers in six member states, B2B reverse-charge sales in EUR and SEK, an
Irish consumer (domestic), a US customer (outside the scope of EU VAT) and a refund in the following quarter all go
through the real payment and refund pipelines (the Stripe sandbox, the ledger).  ECB rates are imported with
``payments rates import`` from ECB-format files.  The report jobs go through ``POST /v1/reports`` and the report
pipeline, with ``PAYMENTS_DATABASE_REPLICA_URL`` pointing at a second database; the returns are read back from the
reports bucket and compared with the hand computation below, to the cent.

**Placing the payments in past quarters.**  The engine books at ``now()`` and the ledger is append-only (triggers
refuse any UPDATE), while the OSS return needs sales in a closed quarter whose ECB rates are published.  The
payments are therefore booked through the real pipelines today and then *moved* to 2024 by :func:`backdate`, a test
helper that switches the append-only triggers off for its own transaction only, in this test's private database
(it checks the database's name), rewrites ``created_at`` of the job's ledger transactions and entries, and switches
the triggers on again before it commits.  Nothing else is touched: the amounts, VAT rates and schemes are what the
pipelines booked, and the returns read only the ledger (never the job rows).  Faking the clock instead would need a
sandbox clock in every part (the VAT stage, Stripe, PostgreSQL's ``now()``); moving the finished rows is the one
honest cut.

**Rates.**  Real ECB publications only (tests/data/ecb/README.md): Q2 2024 ends on Sunday 30 June, so it converts at
Monday 1 July 2024 (SEK 11.3675, PLN 4.3008, HUF 394.25, CZK 25.048); Q3 2024 ends on Monday 30 September 2024
(CZK 25.184).  No rate in this test is generated.

**Hand computation** (seller in Ireland, OSS; VAT exclusive, rounded half up to the minor unit per payment; each
state/rate/currency group converted once, half up to the cent):

* Q2 sales: SE 1,234.56 + 25 % = 308.64 and 99.99 + 24.9975 → 25.00 SEK; PL 789.10 + 23 % = 181.493 → 181.49 PLN;
  HU 45,000.00 + 27 % = 12,150.00 HUF; CZ 2,500.00 + 21 % = 525.00 CZK; DE 150.00 + 19 % = 28.50 EUR; FR 80.00 +
  20 % = 16.00 EUR; B2B DE 2,000.00 EUR and SE 10,000.00 SEK (reverse charge, no VAT); IE 100.00 + 23.00 EUR
  (domestic); US 50.00 USD (outside scope).
* Q2 return: SE 1,334.55 / 11.3675 = 117.4004… → **117.40**, VAT 333.64 / 11.3675 = 29.3503… → **29.35**;
  PL 789.10 / 4.3008 = 183.4774… → **183.48**, VAT 181.49 / 4.3008 = 42.1991… → **42.20**;
  HU 45,000.00 / 394.25 = 114.1407… → **114.14**, VAT 12,150.00 / 394.25 = 30.8180… → **30.82**;
  CZ 2,500.00 / 25.048 = 99.8083… → **99.81**, VAT 525.00 / 25.048 = 20.9597… → **20.96**;
  DE **150.00**, **28.50**; FR **80.00**, **16.00**.  VAT due: **167.83 EUR**.
* Q3: a CZ sale of 1,000.00 + 210.00 CZK: 1,000.00 / 25.184 = 39.7077… → **39.71**, 210.00 / 25.184 = 8.3386… →
  **8.34**.  On 15 July the first SE payment is refunded 385.80 SEK (a quarter of 1,543.20: 308.64 net + 77.16 VAT),
  a correction of **2024-Q2**, SE, at Q2's rate: −308.64 / 11.3675 = −27.1510… → **−27.15**, −77.16 / 11.3675 =
  −6.7877… → **−6.79**.  Q3's VAT due: 8.34 − 6.79 = **1.55 EUR**; Q2's figures stay as filed.

**The replica.**  The second database is a copy of the primary (``CREATE DATABASE … TEMPLATE``) made after the
bookings.  PostgreSQL counts scans per table and database (``pg_stat_user_tables``): across the report jobs the
ledger and rates tables of the primary are not scanned at all, those of the replica are.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from cli.main import cli
from config.settings import get_settings
from engine.adapters.auth import mint
from engine.broker.envelope import Envelope
from engine.db import jobs as job_repo
from engine.db.tables import ledger_entries, ledger_transactions
from engine.ingest.app import create_app
from engine.jobs.job import Job
from engine.runtime.container import Container
from tests.integration.refunds.helpers import queued
from tests.integration.reports.conftest import DATA, container_on, settings_on

pytestmark = pytest.mark.integration

LEDGER_TABLES = ("ledger_entries", "ledger_transactions", "rates")


@pytest.fixture
def primary(payment_settings, fresh_database: str) -> Iterator[Container]:  # type: ignore[no-untyped-def]
    c = container_on(settings_on(payment_settings, fresh_database))
    yield c
    c.db.dispose()


@pytest.fixture
def replica_url(fresh_database: str, postgres_server_url: str) -> Iterator[str]:
    """The URL of a second database, filled later by :func:`copy_database` (dropped afterwards)."""
    name = fresh_database.rpartition("/")[2] + "_replica"
    yield f"{fresh_database.rpartition('/')[0]}/{name}"
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def copy_database(postgres_server_url: str, source_url: str, target_url: str) -> None:
    """``target`` as a copy of ``source``.  PostgreSQL copies only a database nobody is connected to: the idle
    connections pooled by this process (the pipelines', the CLI's) are closed first."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": source_url.rpartition("/")[2]},
        )
        conn.execute(
            sa.text(f'CREATE DATABASE "{target_url.rpartition("/")[2]}" TEMPLATE "{source_url.rpartition("/")[2]}"')
        )


def pay(c: Container, country: str, currency: str, amount: int, vat_id: str | None = None) -> Job:
    """A payment through the real payment pipeline (VAT exclusive); it must succeed."""
    customer: dict[str, Any] = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "buyer@example.eu", "country": country}
    if vat_id:
        customer.update(type="business", vat_id=vat_id)
    data = {"customer": customer, "amount": amount, "currency": currency, "payment_method": "pm_card_visa"}
    envelope = Envelope.new(
        kind="payment", data=data, idempotency_scope=f"test:{uuid.uuid4()}", group_id=customer["id"]
    )
    job = c.run_job("payment", envelope.to_arg())
    assert job.status == "succeeded", (country, currency, amount, job.error)
    return job


def refund(c: Container, payment: Job, amount: int) -> Job:
    """A partial refund through the real refund pipeline; it must succeed."""
    envelope = Envelope.new(
        kind="refund", data={"payment": payment.id, "amount": amount}, idempotency_scope=f"test:{uuid.uuid4()}",
        group_id=payment.customer_id or "g",
    )  # fmt: skip
    job = c.run_job("refund", envelope.to_arg())
    assert job.status == "succeeded", job.error
    return job


def backdate(db: sa.Engine, job: Job, at: datetime) -> int:
    """Move every ledger transaction ``job`` booked, and its entries, to ``at``; returns how many transactions.

    A test helper (see the module docstring): the append-only triggers are disabled for this transaction only, in
    this test's own database, and enabled again before the commit.
    """
    with db.begin() as conn:
        name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
        assert name.startswith("payments_rep_"), f"backdate runs only in a test's private database, not {name}"
        for table in ("ledger_transactions", "ledger_entries"):
            conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
        ids = list(
            conn.execute(sa.select(ledger_transactions.c.id).where(ledger_transactions.c.job_id == job.id)).scalars()
        )
        conn.execute(ledger_transactions.update().where(ledger_transactions.c.id.in_(ids)).values(created_at=at))
        conn.execute(ledger_entries.update().where(ledger_entries.c.transaction_id.in_(ids)).values(created_at=at))
        # The balance check (a deferred constraint trigger) runs now, so the guards can be switched on again.
        conn.execute(sa.text("SET CONSTRAINTS ALL IMMEDIATE"))
        for table in ("ledger_transactions", "ledger_entries"):
            conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"))
    return len(ids)


def import_rates(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    """``payments rates import`` of the real ECB files, as an operator would."""
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "cli"))
    get_settings.cache_clear()
    try:
        for name in ("eurofxref-hist-2024.csv", "eurofxref-hist-2024-q3-end.csv"):
            result = CliRunner().invoke(cli, ["rates", "import", str(DATA / name)])
            assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()


def scans(url: str) -> dict[str, int]:
    """Sequential plus index scans of the ledger and rates tables, as the database counts them."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                    "WHERE relname = ANY(:names)"
                ),
                {"names": list(LEDGER_TABLES)},
            ).all()
    finally:
        engine.dispose()
    return {str(name): int(count) for name, count in rows}


def revenue_by_currency(url: str, first: datetime, end: datetime) -> dict[str, int]:
    """The ``revenue`` account's movement (credits positive) per currency over [first, end), summed by SQL."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(ledger_entries.c.currency, -sa.func.sum(ledger_entries.c.amount))
                .where(
                    ledger_entries.c.account == "revenue",
                    ledger_entries.c.created_at >= first,
                    ledger_entries.c.created_at < end,
                )
                .group_by(ledger_entries.c.currency)
            ).all()
    finally:
        engine.dispose()
    return {str(cur): int(total) for cur, total in rows}


def returned(c: Container, job_id: str) -> dict[str, Any]:
    """The OSS return a report job linked, read back from the reports bucket."""
    with c.db.connect() as conn:
        job = job_repo.get(conn, job_id)
    assert job.status == "succeeded", job.error
    location = job.public["report"]["location"]
    bucket, key = location.removeprefix("s3://").split("/", 1)
    return json.loads(c.s3.get_object(Bucket=bucket, Key=key + "oss-return.json")["Body"].read())


def lines(doc: dict[str, Any], section: str) -> dict[tuple[str | None, str, str | None], tuple[int, int]]:
    return {
        (line.get("period"), line["country"], line["vat_rate"]): (line["taxable_eur"], line["vat_eur"])
        for line in doc[section]
    }


def q2(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 10, 30, tzinfo=UTC)


def test_the_oss_return_from_the_pipelines_equals_the_hand_computation_and_reads_only_the_replica(
    primary: Container,
    replica_url: str,
    fresh_database: str,
    postgres_server_url: str,
    payment_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    c = primary
    # -- Q2 2024: consumers in six states, B2B, domestic, outside scope -----------------------------------------
    booked = [
        (pay(c, "SE", "sek", 123_456), q2(4, 3)),
        (pay(c, "SE", "sek", 9_999), q2(4, 17)),
        (pay(c, "PL", "pln", 78_910), q2(5, 2)),
        (pay(c, "HU", "huf", 4_500_000), q2(5, 21)),
        (pay(c, "CZ", "czk", 250_000), q2(6, 4)),
        (pay(c, "DE", "eur", 15_000), q2(6, 11)),
        (pay(c, "FR", "eur", 8_000), q2(6, 28)),
        (pay(c, "DE", "eur", 200_000, vat_id="DE136695976"), q2(5, 6)),
        (pay(c, "SE", "sek", 1_000_000, vat_id="SE123456789701"), q2(5, 7)),
        (pay(c, "IE", "eur", 10_000), q2(5, 8)),
        (pay(c, "US", "usd", 5_000), q2(5, 9)),
    ]
    first_se = booked[0][0]
    assert first_se.public["amounts"] == {"net": 123_456, "vat": 30_864, "total": 154_320, "currency": "sek"}
    # -- Q3 2024: a new sale, and a quarter of the first SE payment refunded ----------------------------------
    booked.append((pay(c, "CZ", "czk", 100_000), datetime(2024, 8, 14, 9, 0, tzinfo=UTC)))
    booked.append((refund(c, first_se, 38_580), datetime(2024, 7, 15, 9, 0, tzinfo=UTC)))
    for job, at in booked:
        assert backdate(c.db, job, at) >= 1
    import_rates(monkeypatch, fresh_database, tmp_path)

    # -- the replica: a copy of the primary, made now ---------------------------------------------------------
    c.db.dispose()
    copy_database(postgres_server_url, fresh_database, replica_url)
    reporting = container_on(settings_on(payment_settings, fresh_database, replica_url))
    before = {"primary": scans(fresh_database), "replica": scans(replica_url)}

    api = TestClient(create_app(reporting))
    token = mint(reporting.settings, "viewer", sub="accountant", ttl_seconds=600)
    ids = {}
    for period in ("2024-Q2", "2024-Q3"):
        answer = api.post(
            "/v1/reports",
            json={"type": "oss_return", "period": period},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 202, answer.text
        ids[period] = answer.json()["id"]
    for envelope in queued(reporting, "reports"):
        reporting.run_job("report", envelope)
    reporting.reports_db.dispose()  # the report sessions end: PostgreSQL flushes their table counters

    # -- read only on the replica -----------------------------------------------------------------------------
    deadline = time.monotonic() + 10
    while True:
        after = {"primary": scans(fresh_database), "replica": scans(replica_url)}
        if all(after["replica"][t] > before["replica"][t] for t in LEDGER_TABLES) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after["primary"] == before["primary"], "a report read the primary's ledger or rates"
    assert all(after["replica"][t] > before["replica"][t] for t in LEDGER_TABLES), (before, after)

    # -- Q2: per state and rate, to the cent ------------------------------------------------------------------
    doc = returned(reporting, ids["2024-Q2"])
    assert doc["preliminary"] is False and doc["agrees_with_ledger"] is True
    assert lines(doc, "supplies") == {
        ("2024-Q2", "SE", "25"): (11_740, 2_935),
        ("2024-Q2", "PL", "23"): (18_348, 4_220),
        ("2024-Q2", "HU", "27"): (11_414, 3_082),
        ("2024-Q2", "CZ", "21"): (9_981, 2_096),
        ("2024-Q2", "DE", "19"): (15_000, 2_850),
        ("2024-Q2", "FR", "20"): (8_000, 1_600),
    }
    assert doc["corrections"] == []
    assert {r["country"]: r["total_vat_eur"] for r in doc["by_country"]} == {
        "SE": 2_935, "PL": 4_220, "HU": 3_082, "CZ": 2_096, "DE": 2_850, "FR": 1_600,
    }  # fmt: skip
    assert doc["total_vat_eur"] == 16_783
    assert {(r["currency"], r["rate"], r["date"]) for r in doc["exchange_rates"]} == {
        ("sek", "11.3675", "2024-07-01"), ("pln", "4.3008", "2024-07-01"),
        ("huf", "394.25", "2024-07-01"), ("czk", "25.048", "2024-07-01"),
    }  # fmt: skip
    # The three parts (OSS, excluded B2B / domestic / outside scope) add up to the ledger's revenue, per currency.
    assert doc["excluded"]["reverse_charge"] == {
        "eur": {"taxable": 200_000, "vat": 0},
        "sek": {"taxable": 1_000_000, "vat": 0},
    }
    assert doc["excluded"]["domestic"] == {"eur": {"taxable": 10_000, "vat": 2_300}}
    assert doc["excluded"]["outside_scope"] == {"usd": {"taxable": 5_000, "vat": 0}}
    revenue = revenue_by_currency(replica_url, datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))
    assert revenue == {"eur": 233_000, "sek": 1_133_455, "pln": 78_910, "huf": 4_500_000, "czk": 250_000, "usd": 5_000}
    for cur, total in revenue.items():
        sales = doc["reconciliation"][cur]["sales"]
        assert sales["oss"] + sales["domestic"] + sales["reverse_charge"] + sales["outside_scope"] == total
        assert sales["ledger_revenue"] == total and sales["agrees"]

    # -- Q3: the new sale, and the refund as a correction of Q2 -----------------------------------------------
    doc = returned(reporting, ids["2024-Q3"])
    assert doc["agrees_with_ledger"] is True
    assert lines(doc, "supplies") == {("2024-Q3", "CZ", "21"): (3_971, 834)}
    assert lines(doc, "corrections") == {("2024-Q2", "SE", "25"): (-2_715, -679)}
    assert doc["corrections"][0]["currencies"][0]["exchange_rate"] == "11.3675"
    assert {r["country"]: r["total_vat_eur"] for r in doc["by_country"]} == {"CZ": 834, "SE": -679}
    assert doc["total_vat_eur"] == 155
    refunds = doc["reconciliation"]["sek"]["refunds"]
    assert refunds["total"] == refunds["ledger_refunds"] == 30_864 and refunds["agrees"]
    reporting.db.dispose()
