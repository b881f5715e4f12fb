"""`payments run` as a child process on free ports, as a user runs it: started, waited for, driven, stopped.

The e2e tests and the bench's Prometheus scenario use it.  The stack gets its own data directory, free ports for
every listener and nothing else from the caller's ``PAYMENTS_*`` environment; the caller adds the settings it
wants (fast retries, two worker processes, …).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.ports import free_port
from sandbox.process import ManagedProcess, payments_argv

#: ``payments run`` stops on Ctrl-C (SIGINT); it then stops its own children, which takes a while under load.
STOP_TIMEOUT_SECONDS = 60.0


def stack_env(data_dir: Path, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``PAYMENTS_*``, plus a data directory, a free port per listener
    (ingest, metrics, Stripe sandbox, local AWS) and unbuffered output; then ``settings`` on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env.update(
        {
            "PAYMENTS_DATA_DIR": str(data_dir),
            "PAYMENTS_HTTP_PORT": str(free_port()),
            "PAYMENTS_HTTP_INTERNAL_PORT": str(free_port()),
            "PAYMENTS_METRICS_PORT": str(free_port()),
            "PAYMENTS_STRIPE_SIM_PORT": str(free_port()),
            "PAYMENTS_LOCAL_AWS_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(settings or {})
    return env


@dataclass
class StackProcess:
    """A running ``payments run``.  Build with :meth:`start`; end with :meth:`stop`."""

    process: ManagedProcess
    env: dict[str, str]
    data_dir: Path
    cwd: Path | None = None

    @classmethod
    def start(
        cls,
        where: Path,
        settings: Mapping[str, str] | None = None,
        *,
        args: Sequence[str] = (),
        ready: str = "/health",
        timeout: float = 120.0,
        cwd: Path | None = None,
    ) -> StackProcess:
        """Start ``payments run ARGS`` with its data in ``where/var`` and its output in ``where/stack.log``, and
        wait until ``GET {ingest}{ready}`` answers 200 and the runtime file is written.

        ``/health`` needs a live worker; pass ``ready="/health/ready"`` with ``--no-worker``.

        Raises:
            ProcessFailed: it exited or was not ready within ``timeout`` (it is stopped first; the message shows
                the log's tail).
        """
        data_dir = where / "var"
        env = stack_env(data_dir, settings)
        process = ManagedProcess("payments run", payments_argv("run", *args), env=env, cwd=cwd, log=where / "stack.log")
        stack = cls(process.start(), env, data_dir, cwd)
        try:
            process.wait_for_http(f"{stack.ingest_url}{ready}", timeout=timeout)
            process.wait_until(stack.runtime_path.exists, timeout=10, what="the runtime file")
        except BaseException:
            stack.stop()
            raise
        return stack

    # -- where things are ----------------------------------------------------------------------------------------
    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PAYMENTS_HTTP_PORT']}"

    @property
    def internal_url(self) -> str:
        """The ingest's internal port: ``/metrics`` and the detailed ``/health``."""
        return f"http://127.0.0.1:{self.env['PAYMENTS_HTTP_INTERNAL_PORT']}"

    @property
    def metrics_url(self) -> str:
        """The worker's metrics endpoint (the ingest serves its own at ``{internal_url}/metrics``)."""
        return f"http://127.0.0.1:{self.env['PAYMENTS_METRICS_PORT']}/metrics"

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PAYMENTS_STRIPE_SIM_PORT']}"

    @property
    def runtime_path(self) -> Path:
        return self.data_dir / "runtime.json"

    def runtime(self) -> dict[str, Any]:
        """The runtime file ``payments run`` wrote: where each embedded service listens."""
        data: dict[str, Any] = json.loads(self.runtime_path.read_text())
        return data

    @property
    def log_path(self) -> Path:
        assert self.process.log is not None
        return self.process.log

    def log(self) -> str:
        """Everything ``payments run`` and its children printed so far."""
        return self.log_path.read_text(errors="replace")

    # -- drive ---------------------------------------------------------------------------------------------------
    def payments(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a ``payments`` command against this stack.

        Raises:
            AssertionError: ``check`` and it exited non-zero (the message carries its stderr).
        """
        result = subprocess.run(
            payments_argv(*args), env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise AssertionError(f"payments {' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        """``payments ARGS`` parsed as JSON (pass ``--json`` where the command needs it)."""
        return json.loads(self.payments(*args).stdout)

    def token(self, role: str = "operator", sub: str = "e2e") -> str:
        """A bearer token for ``role`` minted by ``payments token``."""
        return self.payments("token", "--role", role, "--sub", sub).stdout.strip().splitlines()[-1]

    # -- stop ----------------------------------------------------------------------------------------------------
    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int | None:
        """Ctrl-C (SIGINT), as a user stops it; SIGKILL after ``timeout``.  Returns the exit code (0: clean)."""
        return self.process.stop(grace=timeout, sig=signal.SIGINT)


__all__ = ["StackProcess", "stack_env"]
