"""`payments config` says, per setting, the variable, its value and where it came from (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli


def test_each_line_names_the_variable_and_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PAYMENTS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PAYMENTS_HTTP_PORT=8123\n")
    monkeypatch.setenv("PAYMENTS_QUEUE_PREFIX", "t-")
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "var"))
    from config.settings import get_settings

    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli, ["config"]).output
    finally:
        get_settings.cache_clear()
    lines = out.splitlines()
    assert "PAYMENTS_QUEUE_PREFIX = t-   (environment)" in lines
    assert "PAYMENTS_HTTP_PORT = 8123   (.env)" in lines
    assert "PAYMENTS_DATABASE_URL = (unset)   (default)" in lines
    assert "None" not in out
    assert f"the runtime file {tmp_path / 'var' / 'runtime.json'}, absent" in out
