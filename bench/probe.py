"""Bench children whose counters the bench reads while they run: the ingest and the worker, as the product runs them.

``python -m bench.probe ROLE [ARG]`` runs one child: ``aws PORT`` (the local SQS/S3 endpoint, no counters),
``ingest PORT`` (the real app as ``payments serve`` runs it, plus a bare endpoint beside it for the ingest
scenario's baseline) or ``worker [noop]`` (``run_worker_process`` as ``payments worker`` runs one process; ``noop``:
the payment pipeline's stages do nothing).  Before the engine makes any client, the child installs a
:class:`Probe`; the parent (:class:`ProbedProcess`, a :class:`sandbox.process.ManagedProcess`) asks for a snapshot
by writing a line on the child's stdin and reads the answer from a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from sandbox.process import ManagedProcess

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------------------------
# Inside the child
# --------------------------------------------------------------------------------------------------------------


class Probe:
    """Counters installed in a child process before the engine builds anything; snapshots on request.

    The parent writes a sequence number as a line on the child's stdin; the child answers by writing
    ``{"seq", "sqs", "commits", "commit_sites", "checkouts", "cpu_seconds", "noop_stage_runs"}`` to
    ``BENCH_PROBE_FILE``
    (atomically, via rename).  Counts are totals since start; the parent subtracts two snapshots.
    """

    def __init__(self, path: Path) -> None:
        import boto3
        import sqlalchemy as sa

        from engine.broker.call_counter import CallCounter

        self._path = path
        self._lock = threading.Lock()
        self._commits = 0
        self._sites: dict[str, int] = {}
        self._checkouts = 0
        # Registered on the default session's event emitter, every boto3 client made afterwards inherits the hook
        # (the engine makes its clients with boto3.client, i.e. from the default session).  CallCounter.attach
        # wants a client; the session's emitter has the same register() as ``client.meta.events``.
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        session_as_client = types.SimpleNamespace(meta=types.SimpleNamespace(events=boto3.DEFAULT_SESSION.events))
        self.sqs = CallCounter().attach(session_as_client)
        # Class-level: every Engine of the process (ingest, runner, relay, dead-letter sink) is counted.
        sa.event.listen(sa.engine.Engine, "commit", self._on_commit)
        # Pool checkouts: with pool_pre_ping each costs PostgreSQL one more (read-only) transaction.
        sa.event.listen(sa.pool.Pool, "checkout", self._on_checkout)
        threading.Thread(target=self._serve, name="bench-probe", daemon=True).start()

    def _on_commit(self, conn: Any) -> None:
        site = _commit_site(sys._getframe(1))
        with self._lock:
            self._commits += 1
            self._sites[site] = self._sites.get(site, 0) + 1

    def _on_checkout(self, *_: Any) -> None:
        with self._lock:
            self._checkouts += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            commits, checkouts, sites = self._commits, self._checkouts, dict(self._sites)
        with _noop_lock:
            noop_runs = _noop_runs[0]
        return {
            "sqs": self.sqs.snapshot(),
            "commits": commits,
            "commit_sites": sites,
            "checkouts": checkouts,
            "cpu_seconds": time.process_time(),
            "noop_stage_runs": noop_runs,
        }

    def _serve(self) -> None:
        for line in sys.stdin:
            data = {"seq": line.strip(), **self.snapshot()}
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(self._path)


def _commit_site(frame: types.FrameType | None) -> str:
    """Where the code that committed lives: ``path:function`` of the innermost frame of this repository (outside
    the virtualenv and the probe), e.g. ``engine/jobs/pipeline.py:_commit``; ``?`` when there is none."""
    root = str(ROOT) + os.sep
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(root) and "site-packages" not in name and not name.endswith("probe.py"):
            return f"{name[len(root) :]}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


#: No-op stage runs in this process (the parent checks the baseline ran them and the real runs did not).
_noop_runs = [0]
_noop_lock = threading.Lock()


@dataclass
class NoopStage:
    """A stage that does nothing: the baseline pipeline keeps the stage names and order, not the work."""

    name: str

    def run(self, job: Any) -> Any:
        from engine.jobs.pipeline import StageResult

        with _noop_lock:
            _noop_runs[0] += 1
        return StageResult()


@dataclass(frozen=True)
class NoopFactory:
    """Builds a :class:`NoopStage` named like the stage it stands for (the container calls it with nothing)."""

    name: str

    def __call__(self) -> NoopStage:
        return NoopStage(self.name)


def noop_payment_kinds() -> tuple[Any, ...]:
    """The registry's job kinds with the ``payment`` pipeline's stages replaced by no-ops (the baseline).

    Same stage names and order, same runner: whatever runs around the stages keeps its own behaviour; only the
    stages' work is gone.  Handed to ``run_worker_process(kinds=...)``, the way a test swaps a kind's stages.
    """
    from pipelines.registry import JOB_KINDS

    return tuple(
        dataclasses.replace(kind, stages=tuple(NoopFactory(name) for name in kind.stage_names))
        if kind.name == "payment"
        else kind
        for kind in JOB_KINDS
    )


def bare_app() -> Any:
    """A bare FastAPI endpoint (no auth, no validation, no database, no queue) for the ingest scenario."""
    # FastAPI reads the handler's annotations; under ``from __future__ import annotations`` they are strings
    # resolved in this module's globals, so ``Request`` must be a module-level name (else: a query param → 422).
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/_bare/v1/payments")
    async def bare(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"id": "job_bare", "object": "job", "status": "accepted"}, status_code=202)

    return app


class Dispatch:
    """One ASGI server for both: ``/_bare/…`` to the bare app, everything else (lifespan too) to the ingest."""

    def __init__(self, ingest: Any, bare: Any) -> None:
        self.ingest = ingest
        self.bare = bare

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_bare/"):
            await self.bare(scope, receive, send)
        else:
            await self.ingest(scope, receive, send)


def child_main(argv: list[str]) -> int:
    """``python -m bench.probe ROLE [ARG]``: ``aws PORT``, ``ingest PORT``, ``worker [noop]``."""
    role, *rest = argv
    if role == "aws":
        from sandbox.embedded.local_aws import LocalAwsServer

        LocalAwsServer(port=int(rest[0])).start()
        print("ready", flush=True)
        sys.stdin.read()  # until the parent closes stdin (or terminates us)
        return 0
    Probe(Path(os.environ["BENCH_PROBE_FILE"]))
    if role == "ingest":
        import uvicorn

        from config.settings import get_settings
        from engine.ingest.app import create_app

        # As `payments serve` runs it (one uvicorn process, no access log), plus the bare app beside it.
        uvicorn.run(
            Dispatch(create_app(), bare_app()),
            host="127.0.0.1",
            port=int(rest[0]),
            log_level=get_settings().log.level.lower(),
            access_log=False,
            proxy_headers=False,
        )
        return 0
    if role == "worker":
        from cli.worker_cmd import run_worker_process
        from config.settings import get_settings

        kinds = noop_payment_kinds() if rest == ["noop"] else None
        # As `payments worker` runs one process: the actors package, the default thread count, every queue.
        return run_worker_process(("actors",), get_settings().worker.threads, (), kinds=kinds)
    raise SystemExit(f"unknown role {role!r}")


# --------------------------------------------------------------------------------------------------------------
# In the bench process
# --------------------------------------------------------------------------------------------------------------


class ProbedProcess(ManagedProcess):
    """``python -m bench.probe ROLE …`` with its output in ``workdir/NAME.log`` and snapshots on request."""

    def __init__(self, name: str, role: list[str], env: dict[str, str], workdir: Path) -> None:
        self.probe_file = workdir / f"{name}.probe.json"
        super().__init__(
            name,
            [sys.executable, "-m", "bench.probe", *role],
            env={**env, "BENCH_PROBE_FILE": str(self.probe_file)},
            cwd=ROOT,
            log=workdir / f"{name}.log",
            stdin=True,
        )
        self._seq = 0

    def snapshot(self, timeout: float = 10.0) -> dict[str, Any]:
        """The child's counters now (see :class:`Probe`).  Raises ProcessFailed: it exited or did not answer."""
        self._seq += 1
        seq = str(self._seq)
        self.send_line(seq)

        def answer() -> dict[str, Any] | None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                data: dict[str, Any] = json.loads(self.probe_file.read_text())
                if data["seq"] == seq:
                    return data
            return None

        return self.wait_until(answer, timeout=timeout, what=f"{self.name}'s snapshot", interval=0.01)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m bench.probe ROLE [ARG] (run the scenarios with python -m bench)")
    sys.exit(child_main(sys.argv[1:]))
