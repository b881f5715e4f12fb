"""Issue 14 item 4: log lines carry identifiers, never message arguments, request bodies or card numbers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import dramatiq
import pytest
import sqlalchemy as sa

from config.settings import Settings
from engine.broker.envelope import Envelope, to_message
from engine.runtime.logs import JsonFormatter, RedactingFilter, configure_logging

PAN = "4111111111111111"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose lines go through the process handler's filters into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.removeHandler(handler)


def _message() -> dramatiq.Message[object]:
    env = Envelope.new(
        kind="payment",
        data={"customer": {"email": "anna@example.de"}, "description": "secret order"},
        idempotency_scope="s",
        group_id="cus_1",
        job_id="job_1",
    )
    return to_message(env, "payments")


def test_dramatiq_failure_line_names_the_message_not_its_arguments(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    message = _message()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        # What dramatiq.worker logs on every failed attempt.
        logger.error("Failed to process message %s with unhandled exception.", message, exc_info=True)
    line = json.loads(stream.getvalue())
    assert "anna@example.de" not in stream.getvalue() and "secret order" not in stream.getvalue()
    expected = f"Failed to process message process_payment message {message.message_id} with unhandled exception."
    assert line["message"] == expected
    assert "RuntimeError: boom" in line["exc_info"]


def test_a_card_number_in_a_line_or_traceback_is_masked(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.warning("value %s seen", "4111 1111.1111 1111")
    try:
        raise ValueError(f"bad input {PAN}")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    assert "1111" not in text and text.count("[card number redacted]") == 2


def test_configure_logging_routes_uvicorn_through_the_filter() -> None:
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler(io.StringIO()))
    logging.getLogger("uvicorn").propagate = False
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(Settings())
        assert any(isinstance(f, RedactingFilter) for f in root.handlers[0].filters)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            assert logging.getLogger(name).handlers == [] and logging.getLogger(name).propagate
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_sql_errors_do_not_carry_their_parameters() -> None:
    from engine.db.engine import get_engine
    from engine.reports.database import reports_engine

    # Building an engine connects to nothing; the flag is what keeps parameters out of errors and echo logs.
    assert get_engine("postgresql://nobody@127.0.0.1:1/none").hide_parameters
    assert reports_engine("postgresql://nobody@127.0.0.1:1/none").hide_parameters
    error = sa.exc.StatementError("boom", "SELECT :x", {"x": "anna@example.de"}, None, hide_parameters=True)
    assert "anna@example.de" not in str(error)
