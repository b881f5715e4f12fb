"""One child process of the local stack: started, waited for, probed, stopped.

The one harness for processes: `payments run` supervises its parts with it (:mod:`sandbox.stack`), the e2e tests
and the bench start `payments run` with it (:mod:`sandbox.stack_process`), and the bench starts its probed ingest
and worker processes with it.  Ports come from :mod:`sandbox.ports`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Self, TypeVar

from engine.errors import PaymentsError
from sandbox.ports import port_open

T = TypeVar("T")

#: How long a stopped process gets to exit on its own before SIGKILL (the worker finishes running jobs).
STOP_GRACE_SECONDS = 15.0


class ProcessFailed(PaymentsError, RuntimeError):
    """A process exited while it was waited for, or did not become ready in time.

    The message names the process and what was awaited, and ends with the tail of its log when it has one.
    """


def payments_argv(*args: str) -> list[str]:
    """The command line that runs the ``payments`` CLI with this interpreter (no ``payments`` on PATH needed)."""
    return [sys.executable, "-m", "cli.main", *args]


class ManagedProcess:
    """A named child process with its output in a log file (or this process's own output) and a graceful stop.

    ``start()`` may be called again after the process exited (a supervisor's restart); the log is appended to.
    With ``stdin=True`` the child reads a pipe that :meth:`send_line` writes to (the bench's snapshot requests).
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log: Path | None = None,
        stdin: bool = False,
        die_with_parent: bool = False,
        new_session: bool = False,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log = log
        self.stdin = stdin
        #: Linux: the child gets SIGTERM when this process dies (PR_SET_PDEATHSIG), even by SIGKILL.
        self.die_with_parent = die_with_parent
        #: A session (and process group) of its own: a terminal's Ctrl-C does not reach it.
        self.new_session = new_session
        self.popen: subprocess.Popen[bytes] | None = None
        #: How many times :meth:`start` started it (restarts = starts - 1).
        self.starts = 0

    # -- start ---------------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the process; returns ``self``.

        Raises:
            RuntimeError: it is still running.
            OSError: the program could not be executed.
        """
        if self.alive():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        out = self.log.open("ab" if self.starts else "wb") if self.log else None
        try:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.PIPE if self.stdin else None,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                preexec_fn=_parent_death_signal(os.getpid()) if self.die_with_parent else None,
                start_new_session=self.new_session,
            )
        finally:
            if out is not None:
                out.close()  # the child has its own descriptor
        self.starts += 1
        return self

    # -- state ---------------------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def returncode(self) -> int | None:
        """The exit code once it exited (negative: killed by that signal); None while running or never started."""
        return self.popen.poll() if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the log file ("" without one)."""
        if self.log is None:
            return ""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -- wait ----------------------------------------------------------------------------------------------------
    def wait_until(self, probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
        """Call ``probe`` until it returns something truthy, and return that.

        ``probe`` answers "not yet" with a falsy value; whatever it raises propagates.

        Raises:
            ProcessFailed: the process exited first, or ``timeout`` seconds passed.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise self._failed(f"{self.name} exited ({self.returncode}) while waiting for {what}")
            value = probe()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise self._failed(f"{what}: not reached within {timeout:.0f}s ({self.name} is running)")
            time.sleep(interval)

    def wait_for_port(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
        """Wait until something listens on ``host:port``.  Raises :class:`ProcessFailed` (see :meth:`wait_until`)."""
        self.wait_until(lambda: port_open(host, port), timeout=timeout, what=f"{self.name} to listen on {host}:{port}")

    def wait_for_http(self, url: str, timeout: float = 60.0) -> None:
        """Wait until ``GET url`` answers 200.  Raises :class:`ProcessFailed` (see :meth:`wait_until`)."""
        import httpx

        def ok() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait_until(ok, timeout=timeout, what=f"{url} to answer 200", interval=0.2)

    def _failed(self, message: str) -> ProcessFailed:
        tail = self.log_tail()
        return ProcessFailed(f"{message}\n{tail}" if tail else message)

    # -- talk ----------------------------------------------------------------------------------------------------
    def send_line(self, line: str) -> None:
        """Write ``line`` and a newline to the child's stdin (started with ``stdin=True``)."""
        assert self.popen is not None and self.popen.stdin is not None, f"{self.name} has no stdin pipe"
        self.popen.stdin.write(f"{line}\n".encode())
        self.popen.stdin.flush()

    # -- stop ----------------------------------------------------------------------------------------------------
    def send_signal(self, sig: int) -> None:
        """Send ``sig`` if the process is running (no-op otherwise)."""
        if self.popen is not None and self.alive():
            self.popen.send_signal(sig)

    def kill(self) -> int | None:
        """SIGKILL and reap; returns the exit code."""
        self.send_signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()
        return self.returncode

    def stop(self, grace: float = STOP_GRACE_SECONDS, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig``, wait up to ``grace`` seconds, then SIGKILL; returns the exit code (None: never started)."""
        stop_all([self], grace, sig)
        return self.returncode


PR_SET_PDEATHSIG = 1


def _parent_death_signal(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel for SIGTERM when ``parent`` dies (Linux only; ``None`` elsewhere).

    The signal is tied to the forking thread, so only the main thread of a long-lived parent should start such
    children (as `payments run` does).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec


def stop_all(processes: Iterable[ManagedProcess], grace: float = STOP_GRACE_SECONDS, sig: int = signal.SIGTERM) -> None:
    """Signal every running process at once, then wait for all within one shared ``grace``; SIGKILL the rest.

    Processes are signalled in the order given (pass newest first to stop a stack from the top).
    """
    processes = list(processes)
    for process in processes:
        process.send_signal(sig)
    deadline = time.monotonic() + grace
    for process in processes:
        if process.popen is None:
            continue
        try:
            process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
        if process.popen.stdin is not None:
            with contextlib.suppress(OSError):
                process.popen.stdin.close()


__all__ = ["STOP_GRACE_SECONDS", "ManagedProcess", "ProcessFailed", "payments_argv", "stop_all"]
