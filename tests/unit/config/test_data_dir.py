"""The data directory does not depend on the current directory, and commands say which runtime file they read."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings, default_data_dir
from engine.runtime.endpoints import NothingRunningError, resolve_endpoints

ROOT = Path(__file__).resolve().parents[3]


def test_from_a_checkout_the_default_is_its_var_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYMENTS_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_data_dir() == ROOT / "var"
    assert Settings().data_dir == ROOT / "var"


def test_installed_the_default_is_the_xdg_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import config.settings as settings_module

    installed = tmp_path / "site-packages" / "config" / "settings.py"
    installed.parent.mkdir(parents=True)
    installed.touch()
    monkeypatch.setattr(settings_module, "__file__", str(installed))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_data_dir() == tmp_path / "state" / "payments-engine"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".local" / "state" / "payments-engine"


def test_nothing_running_names_the_runtime_file_it_looked_for(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "elsewhere")
    with pytest.raises(NothingRunningError) as raised:
        resolve_endpoints(settings).require("database")
    assert str(tmp_path / "elsewhere" / "runtime.json") in str(raised.value)
    assert "PAYMENTS_DATABASE_URL" in str(raised.value)
