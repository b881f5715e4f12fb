"""Shipping to the audit bucket: Object Lock in compliance mode for seven years, each record once even when two
schedulers race, and after a crash between the object and its row the records are shipped again."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from engine.audit.chain import append, records
from engine.audit.ship import audit_bucket, object_key, ship
from engine.audit.verify import verify
from engine.db.tables_audit import audit_shipments
from engine.runtime.container import Container

pytestmark = pytest.mark.integration


def _append(c: Container, n: int) -> None:
    with c.db.begin() as conn:
        for i in range(n):
            append(conn, actor="t", action="job.create", job=f"job_{i}")


def test_the_bucket_and_objects_are_locked_in_compliance_mode(audit_container: Container) -> None:
    c = audit_container
    bucket = audit_bucket(c.settings)
    rule = c.s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert rule["ObjectLockEnabled"] == "Enabled"
    retention = rule["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Years"]) == ("COMPLIANCE", 7)  # moto adds "Days": 0
    _append(c, 3)
    now = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    [shipment] = ship(c.db, c.s3, bucket, now)
    assert (shipment.first_seq, shipment.last_seq) == (1, 3)
    assert shipment.key == "records/2026/12/05/10/000000000001-000000000003.jsonl"
    head = c.s3.head_object(Bucket=bucket, Key=shipment.key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].year == 2033
    version = head["VersionId"]
    with pytest.raises(Exception, match=r"AccessDenied|locked|WORM|ObjectLock"):
        c.s3.delete_object(Bucket=bucket, Key=shipment.key, VersionId=version)
    assert ship(c.db, c.s3, bucket, now) == []  # nothing new
    _append(c, 2)
    [later] = ship(c.db, c.s3, bucket, now)
    assert (later.first_seq, later.last_seq) == (4, 5)
    assert verify(c.db, c.s3, bucket).ok


def test_racing_shippers_ship_each_record_once(audit_container: Container) -> None:
    c = audit_container
    bucket = audit_bucket(c.settings)
    _append(c, 40)
    results: list[list[object]] = []

    def run() -> None:
        results.append(list(ship(c.db, c.s3, bucket, datetime.now(UTC), max_records=7)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with c.db.connect() as conn:
        ranges = conn.execute(
            sa.select(audit_shipments.c.first_seq, audit_shipments.c.last_seq).order_by(audit_shipments.c.first_seq)
        ).all()
    covered = [seq for first, last in ranges for seq in range(first, last + 1)]
    assert covered == list(range(1, 41))
    assert sum(len(r) for r in results) == len(ranges)
    assert verify(c.db, c.s3, bucket).ok


def test_a_crash_after_the_object_ships_the_records_again(audit_container: Container) -> None:
    c = audit_container
    bucket = audit_bucket(c.settings)
    _append(c, 4)
    now = datetime.now(UTC)
    # What a crash between the PUT and the row's COMMIT leaves: the object, no row.
    with c.db.connect() as conn:
        payload = "".join(r.as_line() + "\n" for r in records(conn)).encode()
    c.s3.put_object(Bucket=bucket, Key=object_key(now, 1, 4), Body=payload)
    [shipment] = ship(c.db, c.s3, bucket, now)
    assert (shipment.key, shipment.first_seq, shipment.last_seq) == (object_key(now, 1, 4), 1, 4)
    assert verify(c.db, c.s3, bucket).ok
