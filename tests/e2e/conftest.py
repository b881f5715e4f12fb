"""The stack as a user runs it: `payments run` in a subprocess, driven over HTTP and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.services import port_open

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    env: dict[str, str]
    process: subprocess.Popen[str]
    ingest_url: str
    data_dir: Path
    log_path: Path

    def payments(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a `payments` command against this stack."""
        result = subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"payments {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.payments(*args).stdout)

    def token(self, role: str = "operator", sub: str = "e2e") -> str:
        return self.payments("token", "--role", role, "--sub", sub).stdout.strip().splitlines()[-1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_stack(tmp_path: Path, extra_env: dict[str, str] | None = None, timeout: float = 120) -> Stack:
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env.update(
        {
            "PAYMENTS_DATA_DIR": str(data_dir),
            "PAYMENTS_HTTP_PORT": str(free_port()),
            "PAYMENTS_METRICS_PORT": str(free_port()),
            "PAYMENTS_STRIPE_SIM_PORT": str(free_port()),
            "PAYMENTS_LOCAL_AWS_PORT": str(free_port()),
            "PAYMENTS_SQS_WAIT_TIME_SECONDS": "1",
            "PAYMENTS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
            "PAYMENTS_RETRY_BACKOFF_MAX_SECONDS": "1",
            "PAYMENTS_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    log_path = tmp_path / "stack.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    ingest = f"http://127.0.0.1:{env['PAYMENTS_HTTP_PORT']}"
    stack = Stack(env, process, ingest, data_dir, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"payments run exited {process.returncode}:\n{stack.log()[-4000:]}")
        try:
            if httpx.get(f"{ingest}/health", timeout=2).status_code == 200:
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_stack(stack)
    raise AssertionError(f"the stack did not become healthy in {timeout}s:\n{stack.log()[-4000:]}")


def stop_stack(stack: Stack) -> int:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
        try:
            stack.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stack.process.kill()
            stack.process.wait()
    return stack.process.returncode


def stack_dir() -> Path:
    """A fresh directory under the project's var/ (the embedded PostgreSQL, run as root, needs a path its
    system user can traverse; /tmp/pytest-of-root is private)."""
    import uuid

    path = ROOT / "var" / "e2e" / uuid.uuid4().hex[:10]
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A whole embedded stack (embedded PostgreSQL, local SQS/S3, Redis, Stripe sandbox, ingest, worker,
    scheduler) started with `payments run` and no configuration beyond ports and a data directory."""
    import shutil

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


__all__ = ["Stack", "port_open", "start_stack", "stop_stack", "wait_for"]
