"""Leaving a long-running command quickly once it has stopped its work."""

from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int) -> None:
    """Exit with ``code`` at once, skipping the interpreter's teardown.

    For long-running commands (`payments run`, `worker`, `scheduler`) after they stopped everything they own: the
    teardown only garbage-collects, which took seconds on a busy machine, and a stopped stack must be gone within
    5 s.  Logs and standard streams are flushed first.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
