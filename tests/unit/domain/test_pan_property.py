"""The PAN property test, in-process part (issue 14): a card number in any spelling, in any field of a request body,
of a queued message or of a settlement CSV, is found; the messages, redacted bodies, masked log lines and dead-letter
texts built from it never hold it.  The HTTP and worker paths: tests/integration/ingest/test_pan_property.py and
tests/integration/dlq/test_pan_guard.py."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.broker.dead_letters import scrub_text
from engine.broker.envelope import Envelope, parse_body, redacted_body, safe_body
from engine.broker.errors import PoisonMessage
from engine.domain.pan import contains_pan, find_pan, find_pan_in_csv_bytes, mask_pans
from engine.runtime.logs import JsonFormatter, RedactingFilter
from tests.pan_strategies import digits_of, disguised

# Where a card number can sit in a payment body: every string field, a metadata key, a list item.
FIELDS = ("description", "customer.id", "customer.email", "customer.name", "metadata.note", "metadata.<key>", "items.0")
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _body_with(text: str, field: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"id": "cus_1", "email": "a@example.ie", "country": "IE", "type": "consumer"},
        "amount": 1000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "metadata": {"order": "A-1"},
    }
    if field == "metadata.<key>":
        body["metadata"][text] = "x"
    elif field == "items.0":
        body["items"] = [text]
    elif "." in field:
        group, name = field.split(".")
        body[group][name] = text
    else:
        body[field] = text
    return body


@PROPERTY
@given(card=disguised(), field=st.sampled_from(FIELDS))
def test_every_spelling_in_every_field_is_found_and_the_path_never_holds_it(card: tuple[str, str], field: str) -> None:
    pan, text = card
    where = find_pan(_body_with(text, field))
    assert where is not None
    assert pan not in digits_of(where)
    assert contains_pan(text)


@PROPERTY
@given(card=disguised(), field=st.sampled_from(FIELDS))
def test_a_queued_message_holding_one_is_poison_and_its_redacted_body_holds_none(
    card: tuple[str, str], field: str
) -> None:
    pan, text = card
    envelope = Envelope.new(
        kind="payment", data=_body_with(text, field), idempotency_scope="upstream:1", group_id="cus_1", job_id="job_1"
    )
    for body in (envelope.to_json(), json.dumps(envelope.to_arg(), ensure_ascii=True)):
        with pytest.raises(PoisonMessage) as caught:
            parse_body(body)
        assert caught.value.reason == "pan_detected"
        assert pan not in digits_of(str(caught.value))
        for kept in (redacted_body(body), safe_body(body)):
            assert pan not in digits_of(kept) and json.loads(kept)["job_id"] == "job_1"


@PROPERTY
@given(card=disguised(), column=st.integers(min_value=0, max_value=8), line=st.integers(min_value=0, max_value=3))
def test_a_settlement_csv_holding_one_in_any_cell_is_refused_on_its_line(
    card: tuple[str, str], column: int, line: int
) -> None:
    _, text = card
    header = "terminal_id,transaction_id,timestamp,type,amount,currency,card_last4,auth_code,original_transaction_id"
    clean = ["T-1", "TX1", "2026-11-26T10:00:00+01:00", "sale", "1250", "eur", "4242", "A1", ""]
    rows = [list(clean) for _ in range(4)]
    rows[line][column] = text
    data = (header + "\n" + "\n".join(",".join(r) for r in rows) + "\n").encode()
    assert find_pan_in_csv_bytes(data) == line + 1


@PROPERTY
@given(card=disguised())
def test_log_lines_and_tracebacks_never_hold_one(card: tuple[str, str]) -> None:
    pan, text = card
    assert pan not in digits_of(mask_pans(f"value {text} seen"))
    assert pan not in digits_of(scrub_text(f"ValueError: bad {text}") or "")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.pan_property")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("request field note=%s", text)
        try:
            raise ValueError(f"bad input {text}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert pan not in digits_of(first["message"])
    # The traceback carries other numbers (line numbers): look for the number and its spelling, and the mask.
    trace = second["exc_info"]
    assert pan not in trace and text not in trace and "[card number redacted]" in trace
