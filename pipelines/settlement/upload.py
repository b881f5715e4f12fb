"""Taking a POS batch in: the card-number scan while streaming, the multipart upload to S3, and the job.

The rule (``docs/settlement.md``, "Upload"): the upload is scanned for card numbers while streaming and refused (422
``pan_detected``) before anything is stored.  How that holds for a file of any size with constant memory:

* bytes reach S3 only after the scanner has passed them (:class:`PanScanner` hands on the scanned prefix of what it
  was fed; an unfinished line waits for the next chunk);
* a body smaller than one part (8 MiB) is sent with one PutObject after the whole body is scanned — nothing at all
  leaves the process before the verdict;
* a larger body goes up as a multipart upload, part by part; when a card number turns up, the part holding it is
  never sent and AbortMultipartUpload discards the parts already sent, so no object, no job row and no message
  exist.  (An S3 lifecycle rule "abort incomplete multipart uploads after 1 day" covers a process killed between
  the two — see docs/settlement.md.)

The ingest route and ``payments settle upload`` both go through :class:`BatchSink` and :func:`accept_batch`, so
the two paths cannot drift apart.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.adapters.s3_stream import PART_SIZE, S3StreamWriter
from engine.domain.merchant import DEFAULT_MERCHANT
from engine.domain.pan import find_pan_in_csv_bytes
from engine.errors import InvalidInput
from pipelines.settlement.rows import COLUMNS, InvalidHeader, parse_header

if TYPE_CHECKING:
    from engine.ingest.accept import JobAcceptor
    from engine.ingest.idempotency import SavedAnswer

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/csv"
# Bytes a digit run may hold or a multi-byte character may start/continue with: a long line is never cut there.
_RUN_BYTES = b"0123456789 \t\x0b\x0c._/\\|-" + bytes(range(0x80, 0x100))
_MAX_CARRY = 1024 * 1024
_MAX_HEADER = 64 * 1024


class PanDetected(InvalidInput):
    """The batch holds something that looks like a card number (13–19 digits passing Luhn).  ``line`` is the
    1-based line of the file; the number itself is never kept."""

    def __init__(self, line: int) -> None:
        super().__init__(f"line {line} of the batch carries what looks like a card number")
        self.line = line


class InvalidBatch(InvalidInput):
    """The upload is not a POS batch at all (empty, or its first line is not the header of ``docs/settlement.md``)."""


class PanScanner:
    """Incremental card-number scan over a byte stream, one complete line at a time.

    :meth:`feed` returns the prefix of the bytes seen so far that is now scanned and clean; the rest (an
    unfinished line) waits for more input or :meth:`finish`.  Raises :class:`PanDetected` as soon as a complete
    line holds a card number.  Memory: at most one line (or 1 MiB of a line with no newline, cut at a byte that
    cannot be part of a digit run).
    """

    def __init__(self) -> None:
        self._carry = b""
        self._lines = 0

    def feed(self, data: bytes) -> bytes:
        buf = self._carry + data if self._carry else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) > _MAX_CARRY:
            # A very long line: scan up to the last byte that no digit run can cross.
            cut = len(buf.rstrip(_RUN_BYTES)) or _utf8_boundary(buf, len(buf) - 64)
        clean, self._carry = buf[:cut], buf[cut:]
        self._scan(clean)
        return clean

    def finish(self) -> bytes:
        """Scan and return what is left (the last line without a newline)."""
        rest, self._carry = self._carry, b""
        self._scan(rest)
        return rest

    def _scan(self, data: bytes) -> None:
        if not data:
            return
        # engine.domain.pan's rule (normalised: full-width digits, NBSP, zero-width characters, dots, slashes …).
        index = find_pan_in_csv_bytes(data)
        if index is not None:
            raise PanDetected(self._lines + index + 1)
        self._lines += data.count(b"\n")


def _utf8_boundary(buf: bytes, cut: int) -> int:
    """``cut`` moved back to the start of a UTF-8 character (never inside a multi-byte sequence)."""
    while cut > 0 and 0x80 <= buf[cut] < 0xC0:
        cut -= 1
    return cut


@dataclass(frozen=True)
class StoredBatch:
    """A batch stored in S3: where, how big, and its SHA-256 (the idempotency hash of the upload)."""

    bucket: str
    key: str
    sha256: str
    bytes: int

    def request(self) -> dict[str, Any]:
        """The settlement job's request data (also the message's ``data``)."""
        return {"bucket": self.bucket, "key": self.key, "sha256": self.sha256, "bytes": self.bytes}

    def public(self) -> dict[str, Any]:
        """The job view's ``batch`` field."""
        return {"object": f"s3://{self.bucket}/{self.key}", "sha256": self.sha256, "bytes": self.bytes}


def batch_key(now: datetime | None = None) -> str:
    """A fresh object key for an uploaded batch: ``batches/{YYYY-MM-DD}/{uuid}.csv``."""
    day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
    return f"batches/{day}/{uuid.uuid4().hex}.csv"


class BatchSink:
    """Feed it the upload's bytes in order; it scans, hashes, checks the header and streams to S3.

    :meth:`feed` raises :class:`PanDetected` or :class:`InvalidBatch` (after aborting the upload: nothing stays
    stored).  :meth:`finish` returns the :class:`StoredBatch`.  Any other exception leaves the caller to call
    :meth:`abort`.
    """

    def __init__(self, s3: Any, bucket: str, key: str | None = None, part_size: int = PART_SIZE) -> None:
        self._scanner = PanScanner()
        self._writer = S3StreamWriter(s3, bucket, key or batch_key(), CONTENT_TYPE, part_size)
        self._hash = hashlib.sha256()
        self._header_checked = False
        self._head = b""

    @property
    def key(self) -> str:
        return self._writer.key

    def feed(self, data: bytes) -> None:
        self._hash.update(data)
        try:
            clean = self._scanner.feed(data)
            self._pass(clean)
        except (PanDetected, InvalidBatch):
            self.abort()
            raise

    def finish(self) -> StoredBatch:
        try:
            self._pass(self._scanner.finish(), last=True)
        except (PanDetected, InvalidBatch):
            self.abort()
            raise
        if not self._header_checked:
            self.abort()
            raise InvalidBatch("the body is empty: a POS batch needs at least its header line")
        self._writer.close()
        return StoredBatch(self._writer.bucket, self._writer.key, self._hash.hexdigest(), self._writer.size)

    def abort(self) -> None:
        self._writer.abort()

    def _pass(self, clean: bytes, last: bool = False) -> None:
        if not self._header_checked:
            self._head += clean
            newline = self._head.find(b"\n")
            if newline < 0 and len(self._head) > _MAX_HEADER:
                raise InvalidBatch("the first line is far too long to be the header")
            if newline < 0 and not (last and self._head):
                return
            _check_header(self._head[: newline if newline >= 0 else len(self._head)])
            self._header_checked = True
            clean, self._head = self._head, b""
        if clean:
            self._writer.write(clean)


def _check_header(line: bytes) -> None:
    import csv

    text = line.decode("utf-8", "replace").rstrip("\r\n")
    try:
        # A bare CR inside the line is a csv.Error ("new-line character seen in unquoted field"), not a 500.
        fields = next(csv.reader([text]), [])
    except csv.Error as exc:
        raise InvalidBatch(f"the first line is not CSV ({exc}); it must be the header: {','.join(COLUMNS)}") from exc
    try:
        parse_header(fields)
    except InvalidHeader as exc:
        raise InvalidBatch(f"{exc}; the first line must be the header: {','.join(COLUMNS)}") from exc


def accept_batch(
    acceptor: JobAcceptor,
    s3: Any,
    stored: StoredBatch,
    *,
    client: str,
    key: str,
    correlation_id: str | None,
    merchant: str = DEFAULT_MERCHANT,
) -> SavedAnswer:
    """Record and enqueue the settlement job for ``stored`` (group = the uploading client), with Stripe's
    idempotency semantics: same key and same bytes → the first answer; same key, other bytes → 422.

    When the answer is not a new job for this object (a replay, or any error), the object just uploaded is deleted
    again.  Raises :class:`engine.ingest.errors.ApiError` as :meth:`JobAcceptor.accept` does.
    """
    from engine.ingest.idempotency import canonical_hash

    try:
        answer = acceptor.accept(
            client=client,
            merchant=merchant,
            key=key,
            request_hash=canonical_hash("POST", "/v1/settlements", {"sha256": stored.sha256, "bytes": stored.bytes}),
            kind="settlement",
            data=stored.request(),
            group_key=client,
            customer_id=None,
            correlation_id=correlation_id,
            public={"batch": stored.public()},
        )
    except Exception:
        _delete_quietly(s3, stored)
        raise
    if (answer.body.get("batch") or {}).get("object") != stored.public()["object"]:
        _delete_quietly(s3, stored)  # a replay: the first request's object is the one the job reads
    return answer


def _delete_quietly(s3: Any, stored: StoredBatch) -> None:
    try:
        s3.delete_object(Bucket=stored.bucket, Key=stored.key)
    except Exception:
        log.exception("could not delete s3://%s/%s", stored.bucket, stored.key)
