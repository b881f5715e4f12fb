"""Recomputing the audit chain from the database and from the audit bucket; the first bad record, if any.

A record is good when its sequence number follows the previous one, its ``prev_hash`` is the previous record's
hash, its ``hash`` is :func:`engine.audit.record.record_hash` of its fields, and its body is canonical JSON.  The
database's chain must end where ``audit_head`` says.  In S3, the objects ``audit_shipments`` lists must cover the
chain from record 1 without gaps, each object's bytes must be the ones shipped (SHA-256), each line must be a
good record continuing the chain, and each must equal the database's record of the same number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.audit.chain import head, records
from engine.audit.record import GENESIS, AuditRecord, canonical_json, record_hash
from engine.db.tables_audit import audit_records, audit_shipments


@dataclass(frozen=True)
class Problem:
    """The first thing wrong: where (``database`` or ``s3``), which record (``None``: not one record's fault)."""

    where: str
    seq: int | None
    message: str

    def __str__(self) -> str:
        subject = f"audit record {self.seq}" if self.seq is not None else "audit chain"
        return f"{self.where}: {subject}: {self.message}"


@dataclass
class Report:
    """What a verification checked, and the first problem (``None``: the chain is intact)."""

    database_records: int = 0
    s3_records: int = 0
    s3_objects: int = 0
    first_seq: int = 1
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "from_seq": self.first_seq,
            "database_records": self.database_records,
            "s3_records": self.s3_records,
            "s3_objects": self.s3_objects,
            "problems": [{"where": p.where, "seq": p.seq, "message": p.message} for p in self.problems],
        }


def check_record(record: AuditRecord, expected_seq: int, prev_hash: str) -> str | None:
    """What is wrong with ``record`` as the chain's record ``expected_seq`` after ``prev_hash``; ``None`` if good."""
    if record.seq != expected_seq:
        return f"missing (the next record found is {record.seq})"
    if record.prev_hash != prev_hash:
        return "prev_hash is not the previous record's hash"
    if record_hash(record.seq, record.prev_hash, record.body) != record.hash:
        return "hash does not match its content (the record was changed)"
    try:
        canonical = canonical_json(json.loads(record.body))
    except ValueError:
        return "body is not JSON"
    if canonical != record.body:
        return "body is not canonical JSON"
    return None


def verify_database(conn: sa.Connection, since_seq: int = 1) -> tuple[int, Problem | None]:
    """Recompute the chain in the database from ``since_seq``; ``(records checked, first problem)``."""
    prev = GENESIS
    if since_seq > 1:
        before = conn.execute(
            sa.select(audit_records.c.hash).where(audit_records.c.seq == since_seq - 1)
        ).scalar_one_or_none()
        if before is None:
            return 0, Problem("database", since_seq - 1, "missing")
        prev = str(before)
    expected = since_seq
    count = 0
    for record in records(conn, since_seq=since_seq):
        wrong = check_record(record, expected, prev)
        if wrong is not None:
            return count, Problem("database", expected, wrong)
        count += 1
        prev = record.hash
        expected += 1
    head_seq, head_hash = head(conn)
    if head_seq >= expected:
        return count, Problem("database", expected, f"missing (the chain's head says it ends at {head_seq})")
    if head_seq == expected - 1 and head_seq >= since_seq and head_hash != prev:
        return count, Problem("database", head_seq, "hash differs from the chain head's")
    return count, None


def verify_s3(conn: sa.Connection, s3: Any, bucket: str, since_seq: int = 1) -> tuple[int, int, Problem | None]:
    """Recompute the chain from the shipped objects (those ``audit_shipments`` lists) that hold records from
    ``since_seq`` on, comparing each record with the database's.  ``(records, objects, problem)``."""
    shipments = (
        conn.execute(
            sa.select(audit_shipments)
            .where(audit_shipments.c.last_seq >= since_seq)
            .order_by(audit_shipments.c.first_seq)
        )
        .mappings()
        .all()
    )
    expected, prev, count, objects = 1, GENESIS, 0, 0
    if shipments and since_seq > 1:
        # Start at the first object holding ``since_seq``, chained to the database's record before it.
        expected = int(shipments[0]["first_seq"])
        prev = _database_hashes(conn, expected - 1, expected - 1).get(expected - 1, GENESIS)
    for shipment in shipments:
        if int(shipment["first_seq"]) != expected:
            return count, objects, Problem("s3", expected, f"not in any shipped object (next: {shipment['key']})")
        try:
            payload = s3.get_object(Bucket=bucket, Key=shipment["key"])["Body"].read()
        except Exception as exc:  # NoSuchKey, AccessDenied, an outage: the object cannot vouch for its records
            return count, objects, Problem("s3", expected, f"object {shipment['key']} unreadable: {exc}")
        objects += 1
        lines = payload.decode("utf-8", errors="replace").splitlines()
        stored = _database_hashes(conn, int(shipment["first_seq"]), int(shipment["last_seq"]))
        for line in lines:
            try:
                record = AuditRecord.from_line(line)
            except ValueError:
                return count, objects, Problem("s3", expected, f"unreadable line in {shipment['key']}")
            wrong = check_record(record, expected, prev)
            if wrong is None and record.seq >= since_seq and stored.get(record.seq) != record.hash:
                wrong = "differs from the database's record"
            if wrong is not None:
                return count, objects, Problem("s3", expected, f"{wrong} (object {shipment['key']})")
            prev = record.hash
            expected += 1
            count += 1
        if expected - 1 != int(shipment["last_seq"]):
            return count, objects, Problem("s3", expected, f"missing from object {shipment['key']}")
        if hashlib.sha256(payload).hexdigest() != shipment["sha256"]:
            return count, objects, Problem("s3", None, f"object {shipment['key']} is not the object shipped")
    return count, objects, None


def _database_hashes(conn: sa.Connection, first: int, last: int) -> dict[int, str]:
    rows = conn.execute(
        sa.select(audit_records.c.seq, audit_records.c.hash).where(audit_records.c.seq.between(first, last))
    ).all()
    return {int(r.seq): str(r.hash) for r in rows}


def verify(db: sa.Engine, s3: Any | None, bucket: str, since_seq: int = 1) -> Report:
    """Verify the database's chain and, when ``s3`` is given, the shipped objects; both are always checked."""
    report = Report(first_seq=since_seq)
    with db.connect() as conn:
        report.database_records, problem = verify_database(conn, since_seq)
        if problem is not None:
            report.problems.append(problem)
        if s3 is not None:
            report.s3_records, report.s3_objects, problem = verify_s3(conn, s3, bucket, since_seq)
            if problem is not None:
                report.problems.append(problem)
    return report
