from __future__ import annotations

import json
from pathlib import Path

import dramatiq
import pytest

from engine.broker.envelope import Envelope, from_message, json_schema, parse_body, to_message
from engine.broker.errors import PoisonMessage

ROOT = Path(__file__).resolve().parents[3]


def _envelope(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "kind": "payment",
        "data": {"amount": 1000, "currency": "eur"},
        "idempotency_scope": "sub:dev|key:k1",
        "group_id": "cus_1",
        "job_id": "job_1",
        "correlation_id": "req_1",
    }
    fields.update(overrides)
    return Envelope.new(**fields)  # type: ignore[arg-type]


def test_round_trip_through_body_and_dramatiq_message() -> None:
    env = _envelope()
    assert parse_body(env.to_json()) == env
    message = to_message(env, "payments")
    assert message.actor_name == "process_payment"
    assert message.message_id == env.message_id
    assert message.args == (env.to_arg(),)
    # The actor receives a plain JSON dict; turning it back gives the same envelope with the actor filled in.
    assert from_message(message) == env.model_copy(update={"actor": "process_payment"})
    decoded = dramatiq.Message.decode(message.encode())
    assert from_message(decoded).message_id == env.message_id


def test_explicit_actor_wins_over_the_kind_default() -> None:
    env = _envelope(actor="renew_subscription", kind="subscription")
    assert env.actor_name == "renew_subscription"


def test_upstream_body_with_optional_fields_left_out_is_valid() -> None:
    body = json.dumps(
        {
            "version": 1,
            "message_id": "m-1",
            "kind": "webhook",
            "idempotency_scope": "evt_123",
            "group_id": "pi_123",
            "created_at": "2026-11-26T10:00:00+01:00",
            "data": {"type": "payment_intent.succeeded"},
        }
    )
    env = parse_body(body)
    assert env.actor_name == "process_webhook" and env.job_id is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "undecodable"),
        (b"\xff\xfe".decode("latin-1"), "undecodable"),
        ("[1, 2]", "schema_invalid"),
        ("{}", "schema_invalid"),
        (json.dumps({**_envelope().to_arg(), "version": 2}), "schema_invalid"),
        (json.dumps({**_envelope().to_arg(), "kind": "Payment!"}), "schema_invalid"),
        (json.dumps({**_envelope().to_arg(), "surprise": 1}), "schema_invalid"),
        (json.dumps({k: v for k, v in _envelope().to_arg().items() if k != "idempotency_scope"}), "schema_invalid"),
        (json.dumps({**_envelope().to_arg(), "data": [1]}), "schema_invalid"),
        (json.dumps({**_envelope().to_arg(), "created_at": "2026-11-26T10:00:00"}), "schema_invalid"),
    ],
)
def test_poison_bodies_are_detected(body: str, reason: str) -> None:
    with pytest.raises(PoisonMessage) as info:
        parse_body(body)
    assert info.value.reason == reason


def test_non_envelope_arguments_are_refused_on_send() -> None:
    message: dramatiq.Message[None] = dramatiq.Message(
        queue_name="payments", actor_name="x", args=(1, 2), kwargs={}, options={}
    )
    with pytest.raises(ValueError, match="one envelope dict"):
        from_message(message)


def test_committed_json_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "docs" / "message-envelope.schema.json").read_text())
    assert committed == json.loads(json.dumps(json_schema())), "regenerate: python -m engine.broker.schema"


PAN = "4111111111111111"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(_envelope(data={"metadata": {"note": f"card {PAN}"}}).to_arg()),
        json.dumps(_envelope(data={"metadata": {"n": int(PAN)}}).to_arg()),
        json.dumps(_envelope(data={"metadata": {"n": "4111.1111.1111.1111"}}).to_arg()),
        # JSON escapes do not hide it: the scan reads the decoded strings.
        json.dumps(_envelope(data={"x": "\uff14\uff11\uff11\uff11 1111 1111 1111"}).to_arg(), ensure_ascii=True),
        json.dumps(_envelope(correlation_id=PAN).to_arg()),
        json.dumps({"version": 1, "data": {PAN: 1}}),
        f"not json {PAN}",
    ],
)
def test_a_body_holding_a_card_number_is_poison_pan_detected_and_never_repeats_it(body: str) -> None:
    with pytest.raises(PoisonMessage) as caught:
        parse_body(body)
    assert caught.value.reason == "pan_detected"
    assert "1111" not in str(caught.value)


def test_redacted_body_keeps_identifiers_only() -> None:
    from engine.broker.envelope import redacted_body, safe_body

    env = _envelope(data={"metadata": {"note": PAN}}, correlation_id=f"req {PAN}")
    body = json.dumps(env.to_arg())
    kept = json.loads(redacted_body(body))
    assert kept["redacted"] == "pan_detected"
    assert kept["message_id"] == env.message_id and kept["job_id"] == "job_1" and kept["kind"] == "payment"
    assert "data" not in kept and "correlation_id" not in kept
    assert json.loads(redacted_body(f"garbage {PAN}")) == {"redacted": "pan_detected"}
    assert safe_body(body) == redacted_body(body)
    clean = _envelope().to_json()
    assert safe_body(clean) == clean


def test_sqs_message_prints_identifiers_never_arguments() -> None:
    from engine.broker.consumer import SQSMessage

    env = _envelope(data={"customer": {"email": "anna@example.de"}, "metadata": {"note": "secret"}})
    proxy = SQSMessage(
        to_message(env, "payments"),
        envelope=env,
        body=env.to_json(),
        sqs_message_id="sqs-1",
        receipt_handle="rh",
        receive_count=2,
        group_id="cus_1",
        visible_until=0.0,
    )
    for text in (str(proxy), repr(proxy), f"{proxy}"):
        assert "anna@example.de" not in text and "secret" not in text
        assert env.message_id in text and "job_1" in text and "process_payment" in text
