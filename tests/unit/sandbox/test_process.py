"""The process harness (`sandbox/process.py`) with real child processes: start, wait, talk, stop, restart."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from sandbox.ports import free_port
from sandbox.process import ManagedProcess, ProcessFailed, stop_all


def python(name: str, code: str, tmp_path: Path, *, stdin: bool = False) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-u", "-c", code], log=tmp_path / f"{name}.log", stdin=stdin)


LISTEN = """
import socket, sys, time
time.sleep(0.2)
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("listening", flush=True)
time.sleep(60)
"""


def test_waits_for_a_listener_and_stops_with_sigterm(tmp_path: Path) -> None:
    port = free_port()
    server = ManagedProcess(
        "server", [sys.executable, "-u", "-c", LISTEN, str(port)], log=tmp_path / "server.log"
    ).start()
    try:
        server.wait_for_port(port, timeout=10)
        assert server.alive() and server.pid
    finally:
        code = server.stop(grace=5)
    assert code == -signal.SIGTERM
    assert not server.alive()
    assert "listening" in server.log_tail()


def test_a_process_that_exits_while_awaited_fails_with_its_code_and_log(tmp_path: Path) -> None:
    crash = python("crash", "print('no config, giving up'); raise SystemExit(3)", tmp_path).start()
    with pytest.raises(ProcessFailed, match=r"crash exited \(3\)") as failed:
        crash.wait_for_port(free_port(), timeout=10)
    assert "no config, giving up" in str(failed.value)


def test_a_process_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    idle = python("idle", "import time; time.sleep(60)", tmp_path).start()
    started = time.monotonic()
    try:
        with pytest.raises(ProcessFailed, match="not reached within"):
            idle.wait_for_port(free_port(), timeout=0.3)
        assert time.monotonic() - started < 5
        assert idle.alive()  # waiting does not stop it
    finally:
        idle.stop(grace=5)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    stubborn = python("stubborn", code, tmp_path).start()
    stubborn.wait_until(lambda: "ready" in stubborn.log_tail(), timeout=10, what="ready")
    started = time.monotonic()
    assert stubborn.stop(grace=0.5) == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_stdin_lines_reach_the_child(tmp_path: Path) -> None:
    code = "import sys\nfor line in sys.stdin: print('got', line.strip(), flush=True)"
    echo = python("echo", code, tmp_path, stdin=True).start()
    try:
        echo.send_line("seq-1")
        echo.wait_until(lambda: "got seq-1" in echo.log_tail(), timeout=10, what="the echo")
    finally:
        assert echo.stop(grace=5) == -signal.SIGTERM


def test_a_restart_appends_to_the_log_and_counts_starts(tmp_path: Path) -> None:
    once = python("once", "print('run')", tmp_path)
    for _ in range(2):
        once.start().popen.wait(10)  # type: ignore[union-attr]
    assert once.starts == 2 and once.returncode == 0
    assert once.log_tail().split() == ["run", "run"]


def test_starting_a_running_process_again_is_refused(tmp_path: Path) -> None:
    idle = python("idle", "import time; time.sleep(60)", tmp_path).start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            idle.start()
    finally:
        idle.stop(grace=5)


def test_stop_all_shares_one_grace_and_skips_what_never_started(tmp_path: Path) -> None:
    ignore = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    stubborn = [python(f"stubborn-{i}", ignore, tmp_path).start() for i in range(3)]
    for p in stubborn:
        p.wait_until(lambda p=p: "ready" in p.log_tail(), timeout=10, what="ready")  # type: ignore[misc]
    never = python("never", "pass", tmp_path)
    started = time.monotonic()
    stop_all([*stubborn, never], grace=1.0)
    assert time.monotonic() - started < 4  # one second for all, not one each (plus the kills)
    assert [p.returncode for p in stubborn] == [-signal.SIGKILL] * 3
    assert never.returncode is None
