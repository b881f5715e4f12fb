"""X-Request-ID and Idempotency-Key: the shape they may take and the card-number scan (issue 14, item 2)."""

from __future__ import annotations

import pytest

from engine.ingest.errors import ApiError
from engine.ingest.headers import check_idempotency_key, check_request_id


@pytest.mark.parametrize("value", ["a", "order-1001_try.2:x", "K" * 255, "550e8400-e29b-41d4-a716-446655440000"])
def test_good_values_pass(value: str) -> None:
    assert check_request_id(value) == value
    assert check_idempotency_key(value) == value


@pytest.mark.parametrize("value", ["", "x" * 256, "two words", "slash/y", "tab\there", "é", "a\u200bb", "<script>"])
def test_other_shapes_are_400(value: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_idempotency_key(value)
    expected = "idempotency_key_missing" if value == "" else "idempotency_key_invalid"
    assert refused.value.status == 400 and refused.value.code == expected
    assert (refused.value.param == "Idempotency-Key" and value not in refused.value.message) or value == ""
    if value:
        with pytest.raises(ApiError) as bad_id:
            check_request_id(value)
        assert bad_id.value.code == "request_id_invalid" and bad_id.value.param == "X-Request-ID"


@pytest.mark.parametrize("pan", ["4111111111111111", "4111-1111-1111-1111", "key:4242424242424242"])
def test_card_numbers_are_400_and_not_echoed(pan: str) -> None:
    for check, header in ((check_idempotency_key, "Idempotency-Key"), (check_request_id, "X-Request-ID")):
        with pytest.raises(ApiError) as refused:
            check(pan)
        assert refused.value.code == "pan_detected" and refused.value.param == header
        assert pan not in str(refused.value.body())


def test_absent_request_id_is_none_and_absent_key_is_missing() -> None:
    assert check_request_id(None) is None
    with pytest.raises(ApiError) as refused:
        check_idempotency_key(None)
    assert refused.value.code == "idempotency_key_missing"


def test_random_uuid_keys_are_not_mistaken_for_card_numbers() -> None:
    import uuid

    for _ in range(20000):
        check_idempotency_key(uuid.uuid4().hex)
    # A hex id whose digits pass Luhn (the scan of the body would flag it) is a word, not a card number.
    assert check_idempotency_key("b3fe6d90aac4432fa1324973478632a8")


@pytest.mark.parametrize("pan", ["key_4111111111111111", "a-4111111111111111", "4111.1111.1111.1111:x"])
def test_a_card_number_set_apart_is_found(pan: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_idempotency_key(pan)
    assert refused.value.code == "pan_detected"
