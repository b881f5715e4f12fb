"""Report files go to the reports bucket on the local S3 endpoint, whole or not at all."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.settings import Settings
from engine.adapters.s3 import bucket_names, ensure_buckets, make_s3_client
from engine.domain.conversion import RateMissing
from engine.reports.database import reports_engine, snapshot
from engine.reports.generate import generate, parse_spec
from engine.reports.store import key_prefix, reports_bucket, s3_sinks
from engine.runtime.endpoints import resolve_endpoints
from tests.integration.reports.conftest import book_at, import_real_rates
from tests.integration.reports.test_oss_return import at, book_scenario, sale

pytestmark = pytest.mark.integration

TODAY = date(2024, 10, 15)


@pytest.fixture
def s3_and_bucket(tmp_path: Path, local_aws_url: str, queue_prefix: str):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "var", queue_prefix=queue_prefix, s3={"endpoint_url": local_aws_url})
    s3 = make_s3_client(resolve_endpoints(settings))
    ensure_buckets(s3, settings)
    assert f"{queue_prefix}payments-reports" in bucket_names(settings)
    return s3, reports_bucket(settings)


def keys(s3, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_the_oss_return_is_stored_in_the_reports_bucket(db: sa.Engine, fresh_database: str, s3_and_bucket) -> None:  # type: ignore[no-untyped-def]
    s3, bucket = s3_and_bucket
    book_scenario(db)
    spec = parse_spec("oss_return", period="2024-Q2", today=TODAY)
    prefix = key_prefix(spec, "job_1")
    with snapshot(reports_engine(fresh_database)) as conn:
        generate(conn, spec, seller_country="IE", today=TODAY, open_sink=s3_sinks(s3, bucket, prefix))
    assert keys(s3, bucket) == [
        f"reports/oss_return/2024-Q2/job_1/{name}"
        for name in ("oss-return-transactions.csv", "oss-return.csv", "oss-return.json", "oss-return.pdf")
    ]
    pdf = s3.get_object(Bucket=bucket, Key=prefix + "oss-return.pdf")
    assert pdf["ContentType"] == "application/pdf" and pdf["Body"].read().startswith(b"%PDF-")


def test_a_failed_report_leaves_nothing_in_the_bucket(db: sa.Engine, fresh_database: str, s3_and_bucket) -> None:  # type: ignore[no-untyped-def]
    s3, bucket = s3_and_bucket
    import_real_rates(db)
    with db.begin() as conn:
        book_at(conn, sale("p_pl_q3", "pln", 20_000, 4_600, "PL", "23", "oss"), at(8, 1))
    spec = parse_spec("oss_return", period="2024-Q3", today=TODAY)
    with snapshot(reports_engine(fresh_database)) as conn, pytest.raises(RateMissing):
        generate(conn, spec, seller_country="IE", today=TODAY, open_sink=s3_sinks(s3, bucket, key_prefix(spec, "j")))
    assert keys(s3, bucket) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
