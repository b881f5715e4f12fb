"""Secrets and state files are 0600 from creation; the data directory is 0700 (issue 14 item 8)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import Settings
from engine.adapters.auth import SECRET_FILE_NAME, hs256_secrets
from engine.adapters.stripe_webhooks import SECRET_FILE, configured_secrets
from engine.runtime.endpoints import write_runtime
from engine.runtime.private_files import ensure_private_dir, touch_private, write_private
from sandbox.stripe_sim.store import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _loose_umask() -> object:
    """A umask that would leave files world-readable: the modes below must not depend on it."""
    old = os.umask(0o000)
    yield
    os.umask(old)


def test_write_private_is_0600_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    write_private(path, "one")
    assert _mode(path) == 0o600 and path.read_text() == "one"
    path.chmod(0o644)
    write_private(path, "two")
    assert _mode(path) == 0o600 and path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary file left


def test_touch_private_tightens_and_keeps_content(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_text("data")
    path.chmod(0o644)
    touch_private(path)
    assert _mode(path) == 0o600 and path.read_text() == "data"


def test_data_dir_is_0700(tmp_path: Path) -> None:
    data = tmp_path / "var"
    ensure_private_dir(data)
    assert _mode(data) == 0o700
    data.chmod(0o755)
    ensure_private_dir(data)
    assert _mode(data) == 0o700


def test_every_secret_and_state_file_is_0600(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    write_runtime({"database_url": "postgresql://x"}, settings)
    assert _mode(settings.data_dir) == 0o700
    assert _mode(settings.data_dir / "runtime.json") == 0o600
    hs256_secrets(settings, create=True)
    assert _mode(settings.data_dir / SECRET_FILE_NAME) == 0o600
    Store(settings.data_dir / "stripe-sandbox.sqlite3")
    for path in settings.data_dir.glob("stripe-sandbox.sqlite3*"):
        assert _mode(path) == 0o600, path


def test_the_sandbox_webhook_secret_counts_only_in_sandbox_mode(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("whsec_sandbox\n")
    sandbox = Settings(data_dir=tmp_path)
    assert configured_secrets(sandbox) == ["whsec_sandbox"]
    real = Settings(
        data_dir=tmp_path,
        stripe={"api_key": SecretStr("sk_live_x"), "webhook_secrets": SecretStr("whsec_dashboard")},
    )
    assert configured_secrets(real) == ["whsec_dashboard"]  # a forged event signed with the file's secret fails
