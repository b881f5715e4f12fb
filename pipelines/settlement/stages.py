"""The settlement pipeline's stages: ``ingest`` (chunks) → ``post`` (ledger) → ``report`` (S3).

Recovery points (docs/settlement.md):

* ``ingest`` streams the batch from S3 and commits every chunk of ``chunk_rows`` rows — its settled rows, its
  outcome rows and the job's progress (byte offset, next row number, running tally) — in one transaction.  A worker
  killed mid-batch resumes with a ranged GET from the last committed offset: no row is settled twice, none skipped.
* ``post`` rejects refunds and voids without a known sale, books one ledger transaction per terminal and currency
  (effect ``settlement:{job}:{terminal}:{currency}``) and checkpoints the counts and totals, in one transaction.
* ``report`` writes the full report (JSON and CSV) to S3 from the database — idempotent, so redoing it after a
  crash is harmless — and the runner commits ``succeeded`` with the ``job.succeeded`` outbox event.

A batch whose first line is not the header of ``docs/settlement.md`` cannot be read at all: the job fails
``invalid_header``. A processed batch is ``succeeded`` whatever it rejected.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from config.settings import Settings
from engine.adapters.s3 import settlements_bucket
from engine.db import jobs as job_repo
from engine.db.ledger import record_many
from engine.domain.ledger import settlement_batch
from engine.errors import TransientError
from engine.jobs.job import Job
from engine.jobs.output import StageOutput
from engine.jobs.pipeline import StageResult
from pipelines.settlement import store
from pipelines.settlement.request import BATCH_PREFIX
from pipelines.settlement.rows import (
    ByteCountingLines,
    Header,
    InvalidHeader,
    RowValidator,
    csv_records,
    parse_header,
)
from pipelines.settlement.upload import S3StreamWriter

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 50_000
READ_CHUNK_BYTES = 1024 * 1024
REJECTS_IN_JOB = 1000
PROGRESS_KEY = "ingest_progress"

#: Test hook type: called with each row number as it is staged (to simulate a crash at a given row).
RowHook = Callable[[int], None]


@dataclass(frozen=True)
class IngestOutput(StageOutput):
    """How many chunks were committed and rows read."""

    STAGE = "ingest"

    chunks: int
    rows: int


@dataclass(frozen=True)
class PostOutput(StageOutput):
    """The batch's tally as booked (:meth:`store.Tally.to_json`) and the fee rate applied."""

    STAGE = "post"

    tally: dict[str, Any]
    fee_bps: int


@dataclass(frozen=True)
class ReportOutput(StageOutput):
    """Where the report lies: ``{"json": "s3://…", "csv": "s3://…"}``."""

    STAGE = "report"

    report: dict[str, str]


def _batch_location(job: Job, default_bucket: str) -> tuple[str, str]:
    return str(job.request.get("bucket") or default_bucket), str(job.request["key"])


def _uploaded_at(job: Job) -> datetime:
    return job.created_at or datetime.now(UTC)


class IngestStage:
    """Streams the batch from S3 and settles it chunk by chunk (module docstring)."""

    name = "ingest"

    def __init__(
        self,
        db: sa.Engine,
        s3: Any,
        settings: Settings,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        on_row: RowHook | None = None,
    ) -> None:
        """``chunk_rows`` is the recovery-point size; ``on_row`` is a test hook.  The batch's bucket defaults to
        the settings' settlements bucket."""
        self._db, self._s3, self._chunk_rows, self._on_row = db, s3, chunk_rows, on_row
        self._bucket = settlements_bucket(settings)

    def run(self, job: Job) -> StageResult:
        progress: dict[str, Any] = dict(job.stage_results.get(PROGRESS_KEY) or {})
        if progress.get("done"):
            return StageResult(data=_summary(progress))
        bucket, key = _batch_location(job, self._bucket)
        if bucket != self._bucket or not key.startswith(BATCH_PREFIX):
            # Messages are validated on first sight too; this holds for a job row whatever wrote it.
            return StageResult(
                status="failed",
                error={
                    "code": "batch_location_refused",
                    "message": f"a batch must lie under s3://{self._bucket}/{BATCH_PREFIX}",
                },
            )
        offset = int(progress.get("offset", 0))
        body = self._open(bucket, key, offset)
        if isinstance(body, StageResult):
            return body
        try:
            lines = ByteCountingLines(body.iter_chunks(READ_CHUNK_BYTES), start=offset)
            records = csv_records(lines)
            if "header" in progress:
                header = Header.from_json(progress["header"])
            else:
                first = next(records, None)
                try:
                    header = parse_header(first if first is not None else [])
                except InvalidHeader as exc:
                    return StageResult(status="failed", error={"code": "invalid_header", "message": str(exc)})
            validator = RowValidator(header, _uploaded_at(job))
            state = _IngestState(
                job_id=job.id,
                header=header,
                tally=store.Tally.from_json(progress.get("tally")),
                next_row=int(progress.get("next_row", 1)),
                chunks=int(progress.get("chunks", 0)),
            )
            final = self._settle_chunks(state, self._produce(validator, records, lines, state.next_row))
            return StageResult(data=_summary(final), checkpoint=True)
        finally:
            body.close()

    def _settle_chunks(self, state: _IngestState, chunks: Iterator[_Chunk]) -> dict[str, Any]:
        """Commit each chunk in order on a second thread while this thread parses the next one.

        Parsing and validating is Python on this thread; the chunk's COPY, INSERT and commit wait on PostgreSQL on
        the other, so the two overlap (two cores).  At most one chunk is being committed while the next is built,
        so memory stays at about two chunks of COPY text.  An exception on either side stops the stage after the
        chunk in flight has finished (committed or rolled back): recovery points stay in order.
        """
        pending: Future[dict[str, Any]] | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="settle-commit") as pool:
            for chunk in chunks:
                if pending is not None:
                    pending.result()
                pending = pool.submit(self._commit, state, chunk)
            assert pending is not None  # the producer always yields a last (possibly empty) chunk
            return pending.result()

    def _commit(self, state: _IngestState, chunk: _Chunk) -> dict[str, Any]:
        """One recovery point: the chunk's rows, outcomes and the job's progress in one transaction."""
        with self._db.begin() as conn:
            _claim(conn, state.job_id, state.next_row)
            if chunk.rows:
                store.copy_chunk(conn, chunk.blocks)
                store.settle_chunk(conn, state.job_id, state.tally)
            state.tally.rows += chunk.rows
            state.next_row += chunk.rows
            state.chunks += 1 if chunk.rows else 0
            progress = {
                "offset": chunk.end_offset,
                "next_row": state.next_row,
                "header": state.header.to_json(),
                "tally": state.tally.to_json(),
                "chunks": state.chunks,
                "done": chunk.rows < self._chunk_rows,
            }
            job_repo.checkpoint(
                conn, state.job_id, stage=None, stage_results={PROGRESS_KEY: progress}, status="processing"
            )
        log.info(
            "settlement %s: %d rows staged (offset %d)", state.job_id, state.tally.rows, chunk.end_offset,
            extra={"job_id": state.job_id},
        )  # fmt: skip
        return progress

    def _produce(
        self, validator: RowValidator, records: Iterator[list[str]], lines: ByteCountingLines, first_row: int
    ) -> Iterator[_Chunk]:
        """Chunks of at most ``chunk_rows`` rows as COPY text, numbered from ``first_row``; the last one is shorter
        (possibly empty) and ends the input."""
        check, hook, size = validator.check, self._on_row, self._chunk_rows
        row_no = first_row
        while True:
            blocks: list[str] = []
            buffer: list[str] = []
            n = 0
            for fields in itertools.islice(records, size):
                if hook is not None:
                    hook(row_no)
                buffer.append(store.copy_line(check(row_no, fields)))
                row_no += 1
                n += 1
                if len(buffer) >= store.LINES_PER_BLOCK:
                    blocks.append("".join(buffer))
                    buffer.clear()
            if buffer:
                blocks.append("".join(buffer))
            yield _Chunk(blocks, n, lines.consumed)
            if n < size:
                return

    def _open(self, bucket: str, key: str, offset: int) -> Any:
        """The object's streaming body from ``offset``; a failed job result when it does not exist.  Raises
        :class:`TransientError` for any other S3 failure (the message is retried)."""
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        try:
            return self._s3.get_object(**kwargs)["Body"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                return StageResult(
                    status="failed",
                    error={"code": "batch_not_found", "message": f"s3://{bucket}/{key} does not exist"},
                )
            if code == "InvalidRange":  # the offset is the end of the object: nothing left to read
                return _EmptyBody()
            raise TransientError(f"S3 get_object failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise TransientError(f"S3 unreachable: {exc}") from exc


def _claim(conn: sa.Connection, job_id: str, next_row: int) -> None:
    """Lock the job row for this chunk's transaction and check no other delivery moved its progress on since we
    read it (two workers on one job would otherwise both count the same chunk).  Raises :class:`TransientError`
    when one did: this delivery is retried later and then resumes from the newer progress."""
    current = job_repo.get(conn, job_id, for_update=True).stage_results.get(PROGRESS_KEY) or {}
    if int(current.get("next_row", 1)) != next_row or current.get("done"):
        raise TransientError(f"settlement {job_id}: another delivery is settling this batch")


@dataclass
class _IngestState:
    """What the commit thread carries from chunk to chunk."""

    job_id: str
    header: Header
    tally: store.Tally
    next_row: int
    chunks: int


@dataclass(frozen=True)
class _Chunk:
    """A chunk ready to commit: its rows as COPY text blocks, how many, and the byte offset just past them."""

    blocks: list[str]
    rows: int
    end_offset: int


class _EmptyBody:
    def iter_chunks(self, _size: int) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        pass


def _summary(progress: dict[str, Any]) -> IngestOutput:
    return IngestOutput(chunks=progress.get("chunks", 0), rows=progress.get("next_row", 1) - 1)


_POST_FIELDS = ("counts", "totals", "rejects", "ledger_transactions")


class PostStage:
    """Rejects refunds and voids without a known sale or beyond what is left of it, and books the ledger, in one
    transaction with the checkpoint (``stage = post``).  Commits on its own because what it books depends on what
    the DELETEs found."""

    name = "post"

    def __init__(self, db: sa.Engine, settings: Settings) -> None:
        self._db, self._fee_bps = db, settings.settlement.fee_bps

    def run(self, job: Job) -> StageResult:
        with self._db.begin() as conn:
            # The row lock serialises two deliveries of one job; the tally is the one the last chunk committed.
            stored = job_repo.get(conn, job.id, for_update=True)
            if stored.stage in (self.name, ReportStage.name):
                # Another delivery posted while this one waited for the lock: take its result, book nothing.
                done = {k: stored.public[k] for k in _POST_FIELDS if k in stored.public}
                return StageResult(data=stored.output_or_none(PostOutput) or {}, public=done)
            progress = stored.stage_results.get(PROGRESS_KEY) or {}
            tally = store.Tally.from_json(progress.get("tally"))
            # Lock the sales first: the two checks below then see every other batch's refunds as that batch left
            # them (a concurrent post of refunds of the same sale commits before this one reads, or waits).
            store.lock_originals(conn, job.id)
            store.reject_unknown_originals(conn, job.id, tally)
            store.reject_excess_reversals(conn, job.id, tally)
            txns = []
            totals = tally.totals()
            for total in totals:
                txn = settlement_batch(
                    job.id,
                    str(total["terminal_id"]),
                    str(total["currency"]),
                    int(total["sales"]),  # type: ignore[call-overload]
                    int(total["refunds"]),  # type: ignore[call-overload]
                    int(total["voids"]),  # type: ignore[call-overload]
                    self._fee_bps,
                )
                total["fee"] = int(txn.metadata["fee"]) if txn is not None else 0
                if txn is not None:
                    txns.append(txn)
            ids = record_many(conn, txns)
            public = {
                "counts": tally.counts(),
                "totals": totals,
                "rejects": store.first_rejects(conn, job.id, REJECTS_IN_JOB),
                "ledger_transactions": ids,
            }
            data = PostOutput(tally.to_json(), self._fee_bps)
            job_repo.checkpoint(conn, job.id, stage=self.name, stage_results={self.name: data.to_json()}, public=public)
        return StageResult(data=data, public=public)


class ReportStage:
    """Writes ``reports/{job}.json`` and ``reports/{job}.csv`` to the settlements bucket, streamed from the
    database (constant memory).  Raises :class:`TransientError` when S3 fails (retried)."""

    name = "report"

    def __init__(self, db: sa.Engine, s3: Any, settings: Settings) -> None:
        self._db, self._s3, self._bucket = db, s3, settlements_bucket(settings)

    def run(self, job: Job) -> StageResult:
        from botocore.exceptions import BotoCoreError, ClientError

        public = job.public
        base = f"reports/{job.id}"
        try:
            self._write_json(job, public, f"{base}.json")
            self._write_csv(job, f"{base}.csv")
        except (BotoCoreError, ClientError) as exc:
            raise TransientError(f"could not write the settlement report: {exc}") from exc
        report = {"json": f"s3://{self._bucket}/{base}.json", "csv": f"s3://{self._bucket}/{base}.csv"}
        return StageResult(data=ReportOutput(report), public={"report": report})

    def _write_json(self, job: Job, public: dict[str, Any], key: str) -> None:
        out = S3StreamWriter(self._s3, self._bucket, key, "application/json")
        try:
            head = {
                "job_id": job.id,
                "batch": public.get("batch"),
                "counts": public.get("counts"),
                "totals": public.get("totals"),
            }
            out.write(json.dumps(head)[:-1].encode())
            with self._db.connect() as conn:
                for name, outcome in (("rejects", "rejected"), ("duplicates", "duplicate")):
                    out.write(f', "{name}": ['.encode())
                    first = True
                    for row_no, terminal, txn, _, reason in store.outcomes(conn, job.id, outcome):
                        item: dict[str, Any] = {"row": row_no, "terminal_id": terminal, "transaction_id": txn}
                        if outcome == "rejected":
                            item["reason"] = reason
                        out.write((("" if first else ", ") + json.dumps(item)).encode())
                        first = False
                    out.write(b"]")
            out.write(b"}\n")
            out.close()
        except BaseException:
            out.abort()
            raise

    def _write_csv(self, job: Job, key: str) -> None:
        import csv
        import io

        from engine.domain.spreadsheet import neutralise_row

        out = S3StreamWriter(self._s3, self._bucket, key, "text/csv")
        try:
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(["row", "terminal_id", "transaction_id", "outcome", "reason"])
            with self._db.connect() as conn:
                for row in store.outcomes(conn, job.id):
                    # transaction_id and terminal_id come from the uploaded file: never a formula in the report.
                    writer.writerow(neutralise_row(row))
                    if text.tell() > READ_CHUNK_BYTES:
                        out.write(text.getvalue().encode())
                        text.seek(0)
                        text.truncate()
            out.write(text.getvalue().encode())
            out.close()
        except BaseException:
            out.abort()
            raise
