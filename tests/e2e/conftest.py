"""The stack as a user runs it: `payments run` in a subprocess (:class:`sandbox.stack_process.StackProcess`, the
harness the bench uses too), driven over HTTP and the CLI."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.stack_process import StackProcess

ROOT = Path(__file__).resolve().parents[2]
#: What every e2e stack runs with: short long polls and retries, JSON logs (tests read them).
TEST_SETTINGS = {
    "PAYMENTS_SQS_WAIT_TIME_SECONDS": "1",
    "PAYMENTS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
    "PAYMENTS_RETRY_BACKOFF_MAX_SECONDS": "1",
    "PAYMENTS_LOG_FORMAT": "json",
}

Stack = StackProcess


def start_stack(
    where: Path, extra_env: dict[str, str] | None = None, *, args: tuple[str, ...] = (), ready: str = "/health"
) -> Stack:
    """`payments run ARGS` with the test settings (plus ``extra_env``) and its data under ``where``, ready."""
    return StackProcess.start(where, {**TEST_SETTINGS, **(extra_env or {})}, args=args, ready=ready, cwd=ROOT)


def stop_stack(stack: Stack) -> int | None:
    """Ctrl-C; returns the exit code (0: stopped cleanly)."""
    return stack.stop()


def stack_dir() -> Path:
    """A fresh directory under the project's var/ (the embedded PostgreSQL, run as root, needs a path its
    system user can traverse; /tmp/pytest-of-root is private)."""
    path = ROOT / "var" / "e2e" / uuid.uuid4().hex[:10]
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A whole embedded stack (embedded PostgreSQL, local SQS/S3, Redis, Stripe sandbox, ingest, worker,
    scheduler) started with `payments run` and no configuration beyond ports and a data directory."""
    where = stack_dir()
    s = start_stack(where)
    yield s
    code = stop_stack(s)
    assert code == 0, s.log()[-3000:]
    shutil.rmtree(where, ignore_errors=True)


def wait_for(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


__all__ = ["ROOT", "Stack", "stack_dir", "start_stack", "stop_stack", "wait_for"]
