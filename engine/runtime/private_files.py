"""Files and directories only their owner may read: the data directory, secrets, state files.

Every secret or state file the engine writes is created with mode 0600 in the same system call that creates it
(``os.open(..., 0o600)``), so no other local user can read it even for an instant; the data directory is 0700.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and make ``path`` itself mode 0700; returns ``path``.

    Only a directory this process owns is chmod-ed (the engine never changes the permissions of directories it
    does not own); parents it creates get the default mode.
    """
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    st = path.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def create_private(path: Path, *, exclusive: bool = False) -> int:
    """Open ``path`` for writing (truncated), created with mode 0600; returns the descriptor.

    An existing file is made 0600 too.  With ``exclusive`` an existing file raises :class:`FileExistsError`.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    if exclusive:
        flags |= os.O_EXCL
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    with contextlib.suppress(OSError):
        os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def write_private(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Atomically replace ``path`` with ``text``, mode 0600 from creation (a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = create_private(tmp)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            fh.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def touch_private(path: Path) -> Path:
    """Make sure ``path`` exists with mode 0600 (created so, or tightened), without changing its content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return path


__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "create_private",
    "ensure_private_dir",
    "touch_private",
    "write_private",
]
