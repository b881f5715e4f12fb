"""Where a root-run embedded PostgreSQL can live: which directory blocks its user, and orphaned clusters."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from pathlib import Path

from sandbox.embedded.postgres import _collect_orphans, blocking_dir


def _other_user() -> pwd.struct_passwd:
    """An account that is not us (nobody), as the server's system user is to root."""
    entry = pwd.getpwnam("nobody")
    assert entry.pw_uid != os.geteuid()
    return entry


def test_a_0700_parent_blocks_and_a_0711_one_does_not() -> None:
    user = _other_user()
    base = Path(tempfile.mkdtemp())  # under /tmp (pytest's own tmp dirs are private)
    base.chmod(0o711)
    private = base / "home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    (private / "var").mkdir()
    try:
        _check(private, user)
    finally:
        shutil.rmtree(base)


def _check(private: Path, user: pwd.struct_passwd) -> None:
    assert blocking_dir(private / "var" / "postgres", user) == private
    private.chmod(0o711)
    assert blocking_dir(private / "var" / "postgres", user) is None
    # What does not exist yet is not in the way (we create it).
    assert blocking_dir(private / "missing" / "deeper", user) is None


def test_orphaned_clusters_are_collected_and_linked_ones_kept(tmp_path: Path) -> None:
    clusters = tmp_path / "clusters"
    kept, orphan, young = clusters / "a", clusters / "b", clusters / "c"
    for cluster in (kept, orphan, young):
        (cluster / "data").mkdir(parents=True)
    link = tmp_path / "checkout" / "postgres"
    link.parent.mkdir()
    link.symlink_to(kept / "data")
    (kept / "source").write_text(f"{link}\n")
    (orphan / "source").write_text(f"{tmp_path / 'removed' / 'postgres'}\n")
    (young / "source").write_text(f"{tmp_path / 'being-made' / 'postgres'}\n")
    old = time.time() - 3600
    for cluster in (kept, orphan):
        os.utime(cluster, (old, old))
    assert _collect_orphans(clusters) == [orphan]
    assert kept.exists() and young.exists() and not orphan.exists()
