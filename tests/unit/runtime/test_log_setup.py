"""Logs (issue 16): text on a terminal, JSON otherwise, one handler for every logger, library chatter at WARNING."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from engine.runtime.logs import LIBRARY_LOGGERS, configure_logging, log_format


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Any:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    settings = Settings()
    assert settings.log.format == "auto"
    assert log_format(settings, _Tty()) == "text"
    assert log_format(settings, io.StringIO()) == "json"
    assert log_format(Settings(log={"format": "json"}), _Tty()) == "json"
    assert log_format(Settings(log={"format": "text"}), io.StringIO()) == "text"


def test_one_handler_for_every_logger_and_library_chatter_at_warning(tmp_path: Path) -> None:
    log_file = tmp_path / "out.log"
    configure_logging(Settings(log={"format": "json"}), log_file=str(log_file))
    assert "stripe" in LIBRARY_LOGGERS and "httpx" in LIBRARY_LOGGERS
    logging.getLogger("stripe").info("message='Request to Stripe api' method=get")
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1/_sim/config")
    logging.getLogger("uvicorn.error").warning("uvicorn speaks")
    logging.getLogger("engine.x").info("ours")
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("uvicorn.error", "uvicorn speaks"),
        ("engine.x", "ours"),
    ]
    assert not logging.getLogger("uvicorn").handlers and logging.getLogger("uvicorn").propagate


def test_verbose_means_debug(tmp_path: Path) -> None:
    configure_logging(Settings(), log_file=str(tmp_path / "v.log"), verbosity=1)
    assert logging.getLogger().level == logging.DEBUG
