"""The PAN guard (engine.domain.pan): card numbers found anywhere in a body, nothing else flagged."""

from __future__ import annotations

import random

import pytest
from stdnum import luhn as stdnum_luhn

from engine.domain.pan import (
    contains_pan,
    find_pan,
    find_pan_in_csv_bytes,
    is_valid_card_last4,
    luhn_valid,
    normalise,
    validate_card_last4,
)

# Stripe's test cards (Luhn-valid) of 13, 15, 16 and 19 digits.
VISA = "4242424242424242"
VISA_13 = "4222222222222"
AMEX = "378282246310005"
UNIONPAY_19 = "6205500000000000004"


def with_check_digit(body: str) -> str:
    """A Luhn-valid number: python-stdnum is the oracle, not the code under test."""
    return body + stdnum_luhn.calc_check_digit(body)


def test_test_cards_are_luhn_valid_per_stdnum() -> None:
    for number in (VISA, VISA_13, AMEX, UNIONPAY_19):
        assert stdnum_luhn.is_valid(number)
        assert luhn_valid(number)
    assert len(VISA_13) == 13 and len(UNIONPAY_19) == 19


def test_luhn_matches_stdnum_on_random_numbers() -> None:
    rng = random.Random(20261126)
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
        assert luhn_valid(digits) == stdnum_luhn.is_valid(digits), digits


@pytest.mark.parametrize(
    "text",
    [VISA, VISA_13, AMEX, UNIONPAY_19, "4242 4242 4242 4242", "4242-4242-4242-4242", "4242 4242-4242 4242",
     "3782 822463 10005", "card: 4242424242424242.", "(4242424242424242)", "6205 5000 0000 0000 004",
     "my card is 4242 4242 4242 4242 thanks"],
)  # fmt: skip
def test_card_numbers_are_found(text: str) -> None:
    assert find_pan({"metadata": {"note": text}}) == "metadata.note"


@pytest.mark.parametrize(
    "text",
    ["4242424242424241",  # Luhn fails
     "424242424242",  # 12 digits
     "4242,4242,4242,4242",  # commas do not join digits (amounts, CSV cells)
     "4242:4242:4242:4242",  # nor colons (clock times)
     "4242 4242 4242 4242 123",  # glued to more digits: one 19+ digit run failing Luhn (the documented price)
     "DE89370400440532013000",  # IBAN: 20 digits after the letters
     "DE89 3704 0044 0532 0130 00",  # grouped IBAN: one run of 20 digits
     "2026-11-26T03:20:32Z", "+353 1 234 5678", ""],
)  # fmt: skip
def test_other_numbers_are_not_flagged(text: str) -> None:
    assert find_pan({"description": text, "metadata": {"k": text}}) is None


def _disguised(number: str) -> list[str]:
    """The spellings of issue 14 item 1, each of which must still be found."""
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    fullwidth = number.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    arabic = number.translate({ord(d): 0x0660 + int(d) for d in "0123456789"})
    return [
        ".".join(groups),
        "  ".join(groups),
        "\t".join(groups),
        "/".join(groups),
        " / ".join(groups),
        " - ".join(groups),
        "_".join(groups),
        "\u00a0".join(groups),  # non-breaking space
        "\u200b".join(groups),  # zero-width space
        "\u200b".join(number),
        "\u2060".join(groups),  # word joiner
        "\u00ad".join(groups),  # soft hyphen
        "\u3000".join(groups),  # ideographic space
        "\u2013".join(groups),  # en dash
        "\n".join(groups),
        fullwidth,
        " ".join(fullwidth[i : i + 4] for i in range(0, len(number), 4)),
        arabic,
        "\ufeff" + number,
    ]


@pytest.mark.parametrize("number", [VISA, VISA_13, AMEX, UNIONPAY_19])
def test_disguised_card_numbers_are_found(number: str) -> None:
    for text in _disguised(number):
        assert find_pan({"metadata": {"note": f"card {text} ok"}}) == "metadata.note", repr(text)
        assert find_pan({"metadata": {text: 1}}) == "metadata", repr(text)
        assert contains_pan(text), repr(text)


def test_normalise_keeps_ascii_and_folds_the_rest() -> None:
    assert normalise("abc 123") == "abc 123"
    assert normalise("\uff14\uff12") == "42"
    assert normalise("4\u200b2\u00ad4") == "424"
    assert normalise("a\u00a0b") == "a b"
    assert normalise("\u0664\u0662") == "42"


def test_short_compatibility_text_expanding_to_a_card_number_is_found() -> None:
    # NFKC expands some characters to several digits: the length shortcut must not skip them.
    number = VISA
    circled = {"42": "\u32b7"}  # CIRCLED NUMBER FORTY TWO
    text = number.replace("42", circled["42"])
    assert len(text) < 13
    assert contains_pan(text)


@pytest.mark.parametrize("number", [VISA, AMEX])
def test_csv_scan_finds_disguised_numbers_on_their_line(number: str) -> None:
    for text in _disguised(number):
        if "\n" in text:
            continue
        data = f"h1,h2\nx,ok\ny,{text}\n".encode()
        assert find_pan_in_csv_bytes(data) == 2, repr(text)
    # A line break never joins digits of two records.
    half = len(number) // 2
    assert find_pan_in_csv_bytes(f"a,{number[:half]}\n{number[half:]},b\n".encode()) is None


def test_luhn_valid_run_longer_than_19_digits_is_not_a_card() -> None:
    for length in (20, 24, 30):
        number = with_check_digit("7" * (length - 1))
        assert stdnum_luhn.is_valid(number)
        assert find_pan({"order_id": number}) is None
        assert find_pan({"order_id": " ".join(number[i : i + 4] for i in range(0, length, 4))}) is None


def test_order_ids_failing_luhn_are_not_flagged_and_passing_ones_are() -> None:
    rng = random.Random(7)
    checked = 0
    while checked < 200:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(13, 19)))
        expected = "order_id" if stdnum_luhn.is_valid(digits) else None
        assert find_pan({"order_id": f"ORD-{digits}"}) == expected
        checked += 1


def test_every_length_from_13_to_19_in_every_layout() -> None:
    rng = random.Random(1234)
    for length in range(13, 20):
        for _ in range(30):
            number = with_check_digit("".join(rng.choice("0123456789") for _ in range(length - 1)))
            broken = number[:-1] + str((int(number[-1]) + 1) % 10)
            assert not stdnum_luhn.is_valid(broken)
            for sep in ("", " ", "-"):
                grouped = sep.join(number[i : i + 4] for i in range(0, length, 4))
                assert find_pan({"a": grouped}) == "a", grouped
                assert find_pan({"a": sep.join(broken[i : i + 4] for i in range(0, length, 4))}) is None
            assert find_pan({"a": " ".join(number)}) == "a"  # a space between every digit
    for length in (12, 20):
        number = with_check_digit("4" * (length - 1))
        assert find_pan({"a": number}) is None


def test_paths_name_the_field_never_the_value() -> None:
    body = {
        "customer": {"id": "cus_1", "email": "a@example.com"},
        "items": [{"sku": "a"}, {"note": "ok"}, {"note": f"pay with {VISA}"}],
    }
    assert find_pan(body) == "items.2.note"
    assert find_pan({"metadata": {VISA: "value"}}) == "metadata"
    assert find_pan({"metadata": {"x": {"y": [[VISA]]}}}) == "metadata.x.y.0.0"
    assert find_pan(VISA) == "$"
    assert find_pan([VISA]) == "0"
    for body_ in ({"metadata": {VISA: "v"}}, {"a": VISA}):
        path = find_pan(body_)
        assert path is not None and VISA not in path and "4242" not in path


def test_first_hit_in_document_order() -> None:
    assert find_pan({"a": {"b": "fine", "c": AMEX}, "d": VISA}) == "a.c"
    assert find_pan({"a": AMEX, "m": {VISA: 1}}) == "a"
    assert find_pan({"m": {"x": "fine", VISA: 1}, "z": AMEX}) == "m"


def test_json_integers_and_whole_floats_are_scanned_bools_are_not() -> None:
    assert find_pan({"amount": 1000, "metadata": {"n": int(VISA)}}) == "metadata.n"
    assert find_pan({"n": -int(VISA)}) == "n"
    assert find_pan({"f": 4.242424242424242e15}) == "f"
    assert find_pan({"f": float(AMEX)}) == "f"
    assert find_pan({"n": 4242424242424241, "f": 4.242424242424241e15, "g": 12.5, "b": True, "z": None}) is None


def test_no_false_positive_on_a_typical_payment_body() -> None:
    body = {
        "customer": {"id": "cus_8f2a6c1e9b", "email": "anna@example.de", "country": "DE", "vat_id": "DE136695976"},
        "amount": 129900,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "description": "Order 2026-000123, invoice INV-2026-11-000457",
        "metadata": {"order_id": "ORD-5544332211", "iban": "DE89 3704 0044 0532 0130 00"},
    }
    assert find_pan(body) is None


def test_deeply_nested_body_does_not_blow_the_stack() -> None:
    body: object = VISA
    for _ in range(10_000):
        body = {"a": [body]}
    path = find_pan(body)
    assert path is not None and path.count("a") == 10_000


@pytest.mark.parametrize("value", ["4242", "0000", "9999"])
def test_card_last4_accepts_four_digits(value: str) -> None:
    assert is_valid_card_last4(value)
    assert validate_card_last4(value) == value


@pytest.mark.parametrize("value", ["424", "42424", "42a2", " 4242", "4242\n", "", 4242, None, "٤٢٤٢", VISA])
def test_card_last4_refuses_anything_else(value: object) -> None:
    assert not is_valid_card_last4(value)
    with pytest.raises(ValueError) as err:
        validate_card_last4(value)
    assert str(value) not in str(err.value) or value == ""


def test_a_run_inside_an_identifier_is_not_a_card_number() -> None:
    from engine.domain.pan import contains_pan, find_pan_in_csv_bytes, mask_pans

    glued = "key-3a4111111111111111bf"  # a hex id holding a Luhn-valid stretch of 16 digits
    assert not contains_pan(glued) and mask_pans(glued) == glued
    assert not find_pan_in_csv_bytes(b"id,amount\nT4111111111111111,100\n")
    for typed in ("card 4111111111111111", "pan:4111111111111111", "4111111111111111", "(4111 1111 1111 1111)"):
        assert contains_pan(typed), typed
    assert find_pan_in_csv_bytes(b"id,amount\n4111111111111111,100\n") == 1


def test_random_hex_ids_are_never_taken_for_card_numbers() -> None:
    import uuid

    from engine.domain.pan import contains_pan

    assert not any(contains_pan(f"key-{uuid.uuid4().hex}") for _ in range(20_000))


def test_a_run_inside_a_uuid_is_not_a_card_number_and_one_outside_still_is() -> None:
    from engine.domain.pan import contains_pan, find_pan, find_pan_in_csv_bytes, mask_pans

    # Three all-digit groups joined by the UUID's dashes: 16 digits passing Luhn (seen as a random SQS message id).
    message_id = "41111111-1111-1111-a111-111111111111"
    assert not contains_pan(message_id) and mask_pans(message_id) == message_id
    assert find_pan({"message_id": message_id, "job_id": message_id.upper()}) is None
    assert find_pan_in_csv_bytes(f"id,amount\n{message_id},100\n".encode()) is None
    for typed in ("4111-1111-1111-1111", f"4111111111111111 {message_id}", "4111-1111-1111-1111-abcd-ef01"):
        assert contains_pan(typed), typed  # not UUID-shaped, or outside the UUID
    assert find_pan_in_csv_bytes(b"id,amount\n4111-1111-1111-1111,100\n") == 1


def test_random_uuids_are_never_taken_for_card_numbers() -> None:
    import uuid

    from engine.domain.pan import contains_pan

    assert not any(contains_pan(str(uuid.uuid4())) for _ in range(100_000))


@pytest.mark.parametrize(
    "text", [f"{VISA} 12/29", f"{VISA} 12 29", f"exp 12/29 {AMEX}", f"{VISA_13} - 123", f"{UNIONPAY_19}.1"]
)
def test_a_whole_card_number_followed_or_preceded_by_more_digits_is_found(text: str) -> None:
    assert find_pan({"note": text}) == "note"
    assert find_pan_in_csv_bytes(f"a,{text}\n".encode()) == 0


def test_long_grouped_numbers_without_a_whole_block_still_pass() -> None:
    assert find_pan({"iban": "DE89 3704 0044 0532 0130 00", "ref": "1234 5678 9012 3456 7890"}) is None
