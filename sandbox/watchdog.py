"""The stack's watchdog: when `payments run` dies without stopping its parts, stop them.

`payments run` starts this as a child in a session of its own (``python -m sandbox.watchdog``).  It waits until its
parent is gone.  A parent that stopped cleanly terminates the watchdog first (SIGTERM: it exits doing nothing); a
parent that was killed (``kill -9``, SIGTERM then SIGKILL, a crash) leaves it orphaned, and then it stops what the
parent left running: the children recorded in the runtime file (SIGTERM, SIGKILL after a grace) and the embedded
PostgreSQL on the data directory, which runs detached (``pg_ctl``) and so gets no parent-death signal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

#: How often the parent is looked at.
POLL_SECONDS = 0.2
#: How long left-over children get to exit after SIGTERM before SIGKILL.
CHILD_GRACE_SECONDS = 3.0


def is_ours(pid: int) -> bool:
    """True when ``pid`` is a live process of the `payments` CLI (not a recycled pid of something else)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"cli.main" in cmdline or any(part.endswith(b"/payments") for part in cmdline)


def recorded_children(data_dir: Path) -> list[int]:
    """The pids of the stack's children recorded in the runtime file (empty when there is none)."""
    try:
        data = json.loads((data_dir / "runtime.json").read_text())
    except (OSError, ValueError):
        return []
    return [pid for pid in data.get("children", []) if isinstance(pid, int)]


def stop_leftovers(data_dir: Path, children: list[int], *, stop_postgres: bool = True) -> list[str]:
    """Stop ``children`` that are still `payments` processes, then the embedded PostgreSQL of ``data_dir``.

    Returns what was stopped (for the log).  Never raises: it runs when nobody is left to report to.
    """
    done: list[str] = []
    alive = [pid for pid in children if is_ours(pid)]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGTERM)
            done.append(f"child {pid}")
        except OSError:
            pass
    deadline = time.monotonic() + CHILD_GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if is_ours(pid)]
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if stop_postgres and ((data_dir / "postgres" / "PG_VERSION").exists()):
        try:
            from sandbox.embedded.postgres import EmbeddedPostgres

            pg = EmbeddedPostgres(data_dir / "postgres")
            if pg.is_running():
                pg.stop()
                done.append("embedded PostgreSQL")
        except Exception as exc:  # nobody to raise to; say it in the log
            done.append(f"embedded PostgreSQL NOT stopped: {exc}")
    return done


def watch(parent: int, data_dir: Path, *, stop_postgres: bool = True) -> int:
    """Wait for ``parent`` to go; then stop what it left running.  Returns the exit code."""

    def _quiet_exit(signum: int, frame: FrameType | None) -> None:
        sys.exit(0)  # the parent stops the stack itself

    signal.signal(signal.SIGTERM, _quiet_exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    # Orphaned: the parent died without stopping us.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    done = stop_leftovers(data_dir, recorded_children(data_dir), stop_postgres=stop_postgres)
    if done:
        print(f"payments watchdog: `payments run` (pid {parent}) died; stopped {', '.join(done)}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.watchdog", description=__doc__)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--no-postgres", action="store_true", help="The database is external: leave it alone.")
    args = parser.parse_args(argv)
    return watch(args.parent, args.data_dir, stop_postgres=not args.no_postgres)


if __name__ == "__main__":
    sys.exit(main())
