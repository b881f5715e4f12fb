"""Settlement scenario: POS batches of 100k and 1M generated rows through the real settlement pipeline.

What runs: a batch from :func:`pipelines.settlement.generate.generate` (known totals; seeded faults — bad rows of
every kind, repeats of earlier sales, voids of sales that never existed, valid refunds and voids) is uploaded to the
local S3 endpoint with the same :class:`~pipelines.settlement.upload.BatchSink` as ``POST /v1/settlements``, then a
fresh worker process (``python -m bench.settlement child …``) runs the settlement pipeline for its job — streamed
from S3, chunked COPY + ``INSERT … ON CONFLICT``, ledger, S3 report — as a worker does after a receive.

Figures:

* **rows/s** of the 1M-row batch (ingest + post + report, from the worker's first S3 byte to ``succeeded``)
  against PostgreSQL ``COPY`` of the same file's rows into a plain table (nine ``text`` columns, logged, no index),
  streamed from this process, in the same run.  The goal (docs/settlement.md, "Performance"): ratio ≥ 0.5.
* **rows/s of the identical re-upload** (every row a duplicate or a reject) against the same COPY.
* **peak RSS** of the worker process (``VmHWM``) for 100k rows against the same process idle (imports,
  connections), and for 1M rows against 100k: flat means a ratio near 1; the goal is < 200 MB.

Correctness is checked, not timed: every run's counts and totals must equal the generator's, the re-upload must
settle nothing, a worker killed (SIGKILL) in the middle of a 100k batch and started again must finish with the
expected result, and ``ledger verify`` must pass — otherwise the scenario raises.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Figure
from bench.services import scratch_database
from sandbox.process import ManagedProcess

NAME = "settlement"
ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bench-settlements"
CHUNK_ROWS = 50_000


# --------------------------------------------------------------------------------------------------------------
# The worker child
# --------------------------------------------------------------------------------------------------------------


def child_settle(database_url: str, s3_url: str, job_id: str, out: str, chunk_rows: str = str(CHUNK_ROWS)) -> int:
    """Run the settlement pipeline for ``job_id`` in this (fresh) process; write timing and peak RSS to ``out``."""
    import psutil

    from config.settings import S3Settings, Settings, SettlementSettings
    from engine.db.engine import get_engine
    from engine.jobs.pipeline import Pipeline, PipelineRunner
    from pipelines.settlement.stages import IngestStage, PostStage, ReportStage

    db = get_engine(database_url)
    s3 = _s3(s3_url)
    with db.connect() as conn:  # connect before measuring "idle"
        conn.exec_driver_sql("SELECT 1")
    s3.head_bucket(Bucket=BUCKET)
    idle = psutil.Process().memory_info().rss
    started = time.perf_counter()
    settings = Settings(
        queue_prefix="", s3=S3Settings(bucket_settlements=BUCKET), settlement=SettlementSettings(fee_bps=0)
    )
    stages = (
        IngestStage(db, s3, settings, chunk_rows=int(chunk_rows)),
        PostStage(db, settings),
        ReportStage(db, s3, settings),
    )
    job = PipelineRunner(db, Pipeline("settlement", stages)).run(job_id)
    seconds = time.perf_counter() - started
    peak = _peak_rss()
    Path(out).write_text(
        json.dumps({"seconds": seconds, "idle_rss": idle, "peak_rss": peak, "status": job.status, "id": job.id})
    )
    return 0


def _peak_rss() -> int:
    """This process's peak resident set size in bytes: ``VmHWM`` of /proc/self/status (Linux).

    Not ``ru_maxrss``: Linux carries a parent's RSS at fork into the child's ``ru_maxrss`` across exec, so a worker
    started by a parent that holds a big batch in memory would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux, bytes on macOS (rough)


def _s3(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(s3={"addressing_style": "path"}),
    )


# --------------------------------------------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------------------------------------------


class _Batch:
    """A generated batch written to a file, with its expectations."""

    def __init__(self, workdir: Path, rows: int, prefix: str, seed: int) -> None:
        from pipelines.settlement.generate import Expected, generate

        self.rows, self.path, self.expected = rows, workdir / f"{prefix}.csv", Expected()
        with self.path.open("wb") as f:
            for chunk in generate(
                rows, seed=seed, prefix=prefix, terminals=50, expected=self.expected, malformed=False
            ):
                f.write(chunk)
        self.unique_path, self.unique_rows = workdir / f"{prefix}-unique.csv", 0

    def write_unique(self) -> None:
        """The same file without the rows that repeat an earlier (terminal, transaction), for the keyed COPY."""
        seen: set[tuple[bytes, bytes]] = set()
        with self.path.open("rb") as src, self.unique_path.open("wb") as out:
            out.write(src.readline())
            for line in src:
                terminal, txn, _ = line.split(b",", 2)
                if (terminal, txn) not in seen:
                    seen.add((terminal, txn))
                    out.write(line)
                    self.unique_rows += 1


class _Run:
    def __init__(self, database_url: str, s3_url: str, workdir: Path) -> None:
        self.database_url, self.s3_url, self.workdir = database_url, s3_url, workdir
        self.s3 = _s3(s3_url)

    def upload(self, batch: _Batch) -> str:
        """Store the batch as the ingest does and create its job row; returns the job id."""
        from engine.db import jobs as job_repo
        from engine.db.engine import get_engine
        from engine.jobs.job import Job, new_job_id
        from pipelines.settlement.upload import BatchSink

        sink = BatchSink(self.s3, BUCKET)
        with batch.path.open("rb") as f:
            while chunk := f.read(1 << 20):
                sink.feed(chunk)
        stored = sink.finish()
        job = Job(
            id=new_job_id(),
            kind="settlement",
            status="accepted",
            stage=None,
            idempotency_scope=f"bench:{uuid.uuid4()}",
            queue="settlements.fifo",
            group_id="bench",
            request=stored.request(),
            public={"batch": stored.public()},
        )
        with get_engine(self.database_url).begin() as conn:
            job_repo.insert(conn, job)
        return job.id

    def settle(self, job_id: str, kill_after_rows: int | None = None, chunk_rows: int = CHUNK_ROWS) -> dict[str, Any]:
        """Run the pipeline in a fresh worker process; with ``kill_after_rows``, SIGKILL it once that many rows are
        committed and return None-timed figures."""
        out = self.workdir / f"{job_id}.json"
        argv = [sys.executable, "-m", "bench.settlement", "child", self.database_url, self.s3_url, job_id, str(out)]
        argv.append(str(chunk_rows))
        proc = ManagedProcess(f"settle-{job_id}", argv, cwd=ROOT, log=self.workdir / f"{job_id}.log").start()
        assert proc.popen is not None
        if kill_after_rows is not None:
            while proc.alive() and self._progress(job_id) < kill_after_rows:
                time.sleep(0.05)
            proc.kill()
            return {"killed_at_rows": self._progress(job_id)}
        proc.popen.wait(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"settlement worker failed ({proc.returncode}): {proc.log_tail(3000)}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result

    def _progress(self, job_id: str) -> int:
        view = self.job(job_id)
        return int(((view.get("_progress") or {}).get("next_row") or 1) - 1)

    def job(self, job_id: str) -> dict[str, Any]:
        from engine.db import jobs as job_repo
        from engine.db.engine import get_engine

        with get_engine(self.database_url).connect() as conn:
            job = job_repo.get(conn, job_id)
        return {**job.view(), "_progress": job.stage_results.get("ingest_progress")}

    def check(self, job_id: str, batch: _Batch, *, reupload: bool = False) -> None:
        """Raise unless the job's counts and totals are what the generator promised."""
        view = self.job(job_id)
        exp = batch.expected
        if view["status"] != "succeeded":
            raise RuntimeError(f"{job_id}: {view['status']} {view.get('error')}")
        if reupload:
            rejected = sum(exp.rejected.values())
            want = {"rows": exp.rows, "accepted": 0, "rejected": rejected, "duplicate": exp.rows - rejected}
            if view["counts"] != want or view["totals"]:
                raise RuntimeError(f"re-upload settled something: {view['counts']} vs {want}")
            return
        totals = [{k: v for k, v in t.items() if k != "fee"} for t in view["totals"]]
        if view["counts"] != exp.counts() or totals != exp.totals():
            raise RuntimeError(f"{job_id}: counts {view['counts']} vs expected {exp.counts()}, or totals differ")

    def copy_baseline(self, batch: _Batch, keyed: bool = False) -> float:
        """Seconds for PostgreSQL COPY of the batch's rows (CSV, nine text columns) into a plain logged table.

        ``keyed`` adds a unique index on the first two columns (terminal, transaction) and loads the file without
        its repeated rows: a reference for what the duplicate check's index alone costs a bulk load.
        """
        import psycopg

        from engine.db.engine import normalise_url

        source, want = (batch.unique_path, batch.unique_rows) if keyed else (batch.path, batch.rows)
        dsn = normalise_url(self.database_url).replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as conn:
            table = f"copy_baseline_{uuid.uuid4().hex[:6]}"
            conn.execute(f"CREATE TABLE {table} ({', '.join(f'c{i} text' for i in range(9))})")
            if keyed:
                conn.execute(f"CREATE UNIQUE INDEX ON {table} (c0, c1)")
            conn.commit()
            started = time.perf_counter()
            copy_sql = f"COPY {table} FROM STDIN (FORMAT csv, HEADER)"
            with conn.cursor() as cur, cur.copy(copy_sql) as copy, source.open("rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            conn.commit()
            seconds = time.perf_counter() - started
            n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if not n or n[0] != want:
                raise RuntimeError(f"COPY baseline loaded {n} rows, expected {want}")
            conn.execute(f"DROP TABLE {table}")
        return seconds

    def ledger_ok(self) -> bool:
        from engine.db.engine import get_engine
        from engine.db.ledger import verify

        return verify(get_engine(self.database_url)).ok


def run(quick: bool) -> list[Figure]:
    """Measure the figures in the module docstring (quick: 20k and 100k rows instead of 100k and 1M)."""
    from sandbox.embedded.local_aws import LocalAwsServer

    small, large = (20_000, 100_000) if quick else (100_000, 1_000_000)
    aws = LocalAwsServer(host="127.0.0.1", port=0)
    s3_url = aws.start()
    try:
        with scratch_database("settlement") as db_url, tempfile.TemporaryDirectory(prefix="bench-settle-") as tmp:
            workdir = Path(tmp)
            r = _Run(db_url, s3_url, workdir)
            r.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            # The file is made before any timing (a 1M-row batch is ~70 MB).
            print(f"  generating {small:,} and {large:,} rows …", file=sys.stderr, flush=True)
            b_small = _Batch(workdir, small, "S", seed=1)
            b_large = _Batch(workdir, large, "L", seed=2)
            b_crash = _Batch(workdir, small, "K", seed=3)

            small_run = r.settle(r.upload(b_small))
            r.check(small_run["id"], b_small)
            print(f"  {small:,} rows: {small_run['seconds']:.1f} s", file=sys.stderr, flush=True)
            large_run = r.settle(r.upload(b_large))
            r.check(large_run["id"], b_large)
            print(f"  {large:,} rows: {large_run['seconds']:.1f} s", file=sys.stderr, flush=True)
            again = r.settle(r.upload(b_large))
            r.check(again["id"], b_large, reupload=True)
            copy_seconds = r.copy_baseline(b_large)
            b_large.write_unique()
            keyed_seconds = r.copy_baseline(b_large, keyed=True)

            crash_job = r.upload(b_crash)
            # Chunks of a quarter of the batch: the kill lands in the second chunk, after one recovery point.
            killed = r.settle(crash_job, kill_after_rows=small // 4, chunk_rows=small // 4)
            if killed["killed_at_rows"] >= small:
                raise RuntimeError("the worker finished before it could be killed; the crash check did not run")
            r.settle(crash_job, chunk_rows=small // 4)
            r.check(crash_job, b_crash)
            if not r.ledger_ok():
                raise RuntimeError("ledger verify failed after the settlement runs")
    finally:
        aws.stop()

    mb = 1024 * 1024
    copy_rate = large / copy_seconds
    note = f"{large:,} rows, {b_large.expected.bytes / mb:.0f} MB, chunks of {CHUNK_ROWS:,}"
    return [
        Figure(
            NAME, f"settle {large:,} rows", "rows/s", large / large_run["seconds"], copy_rate,
            "COPY same rows (text)", "higher", note,
        ),
        Figure(
            NAME, f"settle {large:,} rows (vs keyed COPY)", "rows/s", large / large_run["seconds"],
            b_large.unique_rows / keyed_seconds, "COPY same rows, unique (terminal, txn)", "higher",
            "reference only: what the duplicate check's index alone costs a bulk load",
        ),
        Figure(
            NAME, f"identical re-upload {large:,} rows", "rows/s", large / again["seconds"], copy_rate,
            "COPY same rows (text)", "higher", "every row duplicate or rejected; nothing booked",
        ),
        Figure(
            NAME, f"worker peak RSS {small:,} rows", "MB", small_run["peak_rss"] / mb, small_run["idle_rss"] / mb,
            "same worker idle", "lower", "goal < 200 MB",
        ),
        Figure(
            NAME, f"worker peak RSS {large:,} rows", "MB", large_run["peak_rss"] / mb, small_run["peak_rss"] / mb,
            f"peak RSS {small:,} rows", "lower",
            f"flat = ratio ~1; killed at row {killed['killed_at_rows']:,} of {small:,} and resumed: same totals",
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "child":
        sys.exit(child_settle(*sys.argv[2:7]))
    from bench.__main__ import main

    sys.exit(main(["--only", "settlement", *sys.argv[1:]]))
