"""`payments run` from a private (0700, `mktemp -d`) directory: it comes up, SIGTERM stops every part within 5 s,
and when it is killed outright nothing it started outlives it (issue 16, "A stack that starts anywhere")."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.embedded.postgres import EmbeddedPostgres, PostmasterStatus
from sandbox.stack_process import StackProcess
from tests.e2e.conftest import ROOT, TEST_SETTINGS, Stack

pytestmark = pytest.mark.xdist_group("e2e")

#: Default long polls (20 s): a stop must not wait for them.
SETTINGS = {k: v for k, v in TEST_SETTINGS.items() if k != "PAYMENTS_SQS_WAIT_TIME_SECONDS"}


@pytest.fixture
def where() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="payments-e2e-"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    yield path
    EmbeddedPostgres(path / "var" / "postgres").destroy()
    shutil.rmtree(path, ignore_errors=True)


def _children() -> dict[int, int]:
    """pid → parent pid of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                out[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _postmaster(stack: Stack) -> int:
    info = PostmasterStatus.parse((stack.data_dir / "postgres" / "postmaster.pid").read_text())
    assert info is not None
    return info.pid


def _alive(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {pid for pid in pids if _alive(pid)}
        if not left:
            return left
        time.sleep(0.1)
    return {pid for pid in pids if _alive(pid)}


def _start(where: Path) -> Stack:
    return StackProcess.start(where, SETTINGS, cwd=ROOT)


def test_sigterm_stops_every_part_within_5_seconds(where: Path) -> None:
    stack = _start(where)
    assert stat.S_IMODE(stack.data_dir.stat().st_mode) == 0o700  # the engine's data dir is private
    assert stack.payments("queues", "ls").returncode == 0
    popen = stack.process.popen
    assert popen is not None
    parts = _descendants(popen.pid) | {_postmaster(stack)}
    time.sleep(2)  # the worker's receivers are inside their 20 s long polls now
    started = time.monotonic()
    popen.send_signal(signal.SIGTERM)
    popen.wait(timeout=10)
    took = time.monotonic() - started
    assert popen.returncode == 0, stack.log()[-3000:]
    assert took < 5.0, f"payments run took {took:.1f}s to stop"
    assert _wait_gone(parts, 1.0) == set(), stack.log()[-2000:]
    assert not stack.runtime_path.exists()


def test_killed_outright_leaves_nothing_behind(where: Path) -> None:
    stack = _start(where)
    popen = stack.process.popen
    assert popen is not None
    parts = _descendants(popen.pid) | {_postmaster(stack)}
    popen.kill()  # SIGKILL: no chance to stop anything itself
    popen.wait()
    left = _wait_gone(parts, 10.0)
    assert left == set(), f"still running after `payments run` was killed: {sorted(left)}\n{stack.log()[-2000:]}"


def test_a_stale_server_on_the_data_dir_is_stopped_at_the_next_start(where: Path) -> None:
    stack = _start(where)
    popen = stack.process.popen
    assert popen is not None
    postmaster = _postmaster(stack)
    watchdogs = {pid for pid in _children() if b"sandbox.watchdog" in Path(f"/proc/{pid}/cmdline").read_bytes()}
    watchdogs = {pid for pid in watchdogs if str(stack.data_dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()}
    assert watchdogs
    for pid in watchdogs:  # the watchdog dies too (an OOM kill of the whole group, say)
        os.kill(pid, signal.SIGKILL)
    popen.kill()
    popen.wait()
    time.sleep(1)
    assert _alive(postmaster)  # orphaned: nobody stopped it
    again = _start(where)
    try:
        assert not _alive(postmaster)
        assert "left running" in again.log() and "embedded PostgreSQL" in again.log()
        assert again.payments("queues", "ls").returncode == 0
    finally:
        assert again.stop() == 0
