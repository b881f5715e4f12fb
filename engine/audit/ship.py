"""Shipping the audit chain to the audit bucket: JSON-lines objects under S3 Object Lock (compliance mode).

The scheduler's ``audit-ship`` task runs hourly.  Each run ships every record after the last shipped one, in
objects of at most :data:`MAX_RECORDS` lines, each keyed ``records/YYYY/MM/DD/HH/<first>-<last>.jsonl`` (the hour
of the run, then the first and last sequence numbers, zero-padded so keys sort in chain order).  Every object is
written with ``ObjectLockMode=COMPLIANCE`` and a retain-until date :data:`RETENTION_YEARS` years ahead (the bucket's
default retention says the same; the explicit date holds even on a bucket configured otherwise).

A run holds a transaction-level advisory lock: two schedulers cannot ship the same records twice.  The object is
put before its ``audit_shipments`` row commits; a crash in between leaves an object no row lists, and the next run
ships the same records again (verification reads the objects the rows list).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from config.settings import Settings
from engine.adapters.s3 import AUDIT_RETENTION_YEARS
from engine.audit.chain import records, seal
from engine.db.tables_audit import audit_shipments

RETENTION_YEARS = AUDIT_RETENTION_YEARS
MAX_RECORDS = 50_000
SHIP_INTERVAL_SECONDS = 3600.0
# pg_advisory_xact_lock key of a shipping run ("audit" in ASCII).
_SHIP_LOCK = 0x6175646974


@dataclass(frozen=True)
class Shipment:
    """One object written to the audit bucket."""

    key: str
    first_seq: int
    last_seq: int
    sha256: str


def audit_bucket(settings: Settings) -> str:
    """The audit bucket's name, with ``PAYMENTS_QUEUE_PREFIX`` in front."""
    return f"{settings.queue_prefix}{settings.s3.bucket_audit}"


def retain_until(now: datetime, years: int = RETENTION_YEARS) -> datetime:
    """``now`` plus ``years`` calendar years (29 February becomes 28 February)."""
    try:
        return now.replace(year=now.year + years)
    except ValueError:
        return now.replace(year=now.year + years, day=28)


def object_key(now: datetime, first: int, last: int) -> str:
    """The key of an object holding records ``first``..``last``, shipped in the hour of ``now``."""
    return f"records/{now:%Y/%m/%d/%H}/{first:012d}-{last:012d}.jsonl"


def ship(db: sa.Engine, s3: Any, bucket: str, now: datetime, *, max_records: int = MAX_RECORDS) -> list[Shipment]:
    """Ship every record not shipped yet; return the objects written (none when the chain has nothing new).

    Raises :class:`botocore.exceptions.ClientError` (S3 refused; nothing is marked shipped) and
    :class:`sqlalchemy.exc.SQLAlchemyError`.
    """
    now = now.astimezone(UTC)
    seal(db)  # queued records get their place in the chain first, so they are shipped this hour
    shipped: list[Shipment] = []
    while True:
        with db.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SHIP_LOCK)))
            done = conn.execute(sa.select(sa.func.coalesce(sa.func.max(audit_shipments.c.last_seq), 0))).scalar_one()
            batch = []
            for record in records(conn, since_seq=int(done) + 1, batch=min(max_records, 5000)):
                batch.append(record)
                if len(batch) >= max_records:
                    break
            if not batch:
                return shipped
            payload = "".join(r.as_line() + "\n" for r in batch).encode()
            digest = hashlib.sha256(payload).hexdigest()
            key = object_key(now, batch[0].seq, batch[-1].seq)
            answer = s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=payload,
                ContentType="application/x-ndjson",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until(now),
                ChecksumAlgorithm="SHA256",
                Metadata={"first-seq": str(batch[0].seq), "last-seq": str(batch[-1].seq), "sha256": digest},
            )
            conn.execute(
                audit_shipments.insert().values(
                    key=key,
                    first_seq=batch[0].seq,
                    last_seq=batch[-1].seq,
                    sha256=digest,
                    version_id=answer.get("VersionId"),
                )
            )
        shipped.append(Shipment(key, batch[0].seq, batch[-1].seq, digest))


def ship_task(db: sa.Engine, s3: Any, settings: Settings, now: datetime) -> str:
    """The scheduler's ``audit-ship`` task."""
    done = ship(db, s3, audit_bucket(settings), now)
    if not done:
        return "nothing new to ship"
    return f"{sum(s.last_seq - s.first_seq + 1 for s in done)} record(s) in {len(done)} object(s), last {done[-1].key}"
