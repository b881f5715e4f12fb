"""Row checks, header parsing and the byte-counting CSV reader of the POS batch (no I/O)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.settlement.rows import (
    COLUMNS,
    REASONS,
    ByteCountingLines,
    Header,
    InvalidHeader,
    RowValidator,
    csv_records,
    parse_header,
)

UPLOADED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HEADER = parse_header(list(COLUMNS))
GOOD = ["T-1", "TX1", "2026-11-26T10:00:00+01:00", "sale", "1250", "EUR", "4242", "A1B2", ""]


def check(fields: list[str], header: Header = HEADER) -> tuple[object, ...]:
    return RowValidator(header, UPLOADED).check(7, fields)


def with_(index: int, value: str, base: list[str] = GOOD) -> list[str]:
    row = list(base)
    row[index] = value
    return row


def test_a_good_sale_is_normalised() -> None:
    row = check(GOOD)
    assert row == (
        7, "T-1", "TX1", datetime(2026, 11, 26, 9, 0, tzinfo=UTC), "sale", 1250, "eur", "4242", "A1B2", None, None,
    )  # fmt: skip


def test_refund_and_void_need_an_original_and_a_sale_must_not_have_one() -> None:
    refund = with_(3, "REFUND")
    assert check(refund)[-1] == "missing_original_transaction_id"
    assert check(with_(8, "TX0", refund))[4] == "refund" and check(with_(8, "TX0", refund))[-1] is None
    assert check(with_(8, "TX0", refund))[9] == "TX0"
    assert check(with_(8, "TX1", refund))[-1] == "invalid_original_transaction_id"  # itself
    assert check(with_(8, "TX0"))[-1] == "unexpected_original_transaction_id"


@pytest.mark.parametrize(
    ("index", "value", "reason"),
    [
        (0, "", "invalid_terminal_id"),
        (0, " T-1", "invalid_terminal_id"),
        (0, "T" * 65, "invalid_terminal_id"),
        (1, "", "invalid_transaction_id"),
        (1, "TX1 ", "invalid_transaction_id"),
        (1, "tx\u00e9", "invalid_transaction_id"),
        (2, "26/11/2026 10:00", "invalid_timestamp"),
        (2, "2026-02-30T10:00:00Z", "invalid_timestamp"),
        (2, "2026-11-26T10:00:00", "timestamp_missing_offset"),
        (2, "1999-12-31T23:59:59Z", "timestamp_too_old"),
        (2, "2026-11-27T12:00:01Z", "timestamp_in_future"),
        (3, "chargeback", "unknown_type"),
        (4, "12.50", "invalid_amount"),
        (4, "-5", "invalid_amount"),
        (4, "+5", "invalid_amount"),
        (4, "1_000", "invalid_amount"),
        (4, "\u0661\u0662", "invalid_amount"),  # Arabic-Indic digits: str.isdigit() would say yes
        (4, "1" * 13, "invalid_amount"),
        (4, "0", "amount_not_positive"),
        (4, "000", "amount_not_positive"),
        (5, "XYZ", "unsupported_currency"),
        (5, "", "unsupported_currency"),
        (6, "424", "invalid_card_last4"),
        (6, "42424", "invalid_card_last4"),
        (6, "42a4", "invalid_card_last4"),
        (7, "A-1", "invalid_auth_code"),
        (7, "A" * 13, "invalid_auth_code"),
    ],
)
def test_each_bad_field_has_its_reason(index: int, value: str, reason: str) -> None:
    row = check(with_(index, value))
    assert row[-1] == reason and reason in REASONS
    assert row[0] == 7 and row[3] is None  # a rejected row keeps only its number, raw ids and reason


def test_timestamp_bounds_are_inclusive_and_relative_to_the_upload() -> None:
    assert check(with_(2, "2000-01-01T00:00:00Z"))[-1] is None
    assert check(with_(2, "2000-01-01T01:00:00+01:00"))[-1] is None  # the same instant
    assert check(with_(2, (UPLOADED + timedelta(hours=24)).isoformat()))[-1] is None
    assert check(with_(2, "2026-11-26T10:00:00.123456789Z"))[-1] is None


def test_currency_exponent_decides_the_step() -> None:
    assert check(with_(5, "kwd", with_(4, "1235")))[-1] == "amount_invalid_precision"
    assert check(with_(5, "KWD", with_(4, "1230")))[6] == "kwd"
    assert check(with_(5, "isk", with_(4, "550")))[-1] == "amount_invalid_precision"
    assert check(with_(5, "jpy", with_(4, "1")))[-1] is None


def test_wrong_column_count_is_malformed_and_keeps_the_ids() -> None:
    row = check([*GOOD, "extra"])
    assert row[-1] == "malformed_row" and row[1:3] == ("T-1", "TX1")
    assert check([])[-1] == "malformed_row" and check([])[1] is None


def test_header_in_any_order_case_and_bom_and_without_the_ninth_column() -> None:
    header = parse_header(
        ["\ufeffAMOUNT", " terminal_id", *[c for c in COLUMNS[:8] if c not in ("amount", "terminal_id")]]
    )
    assert header.width == 8 and header.positions[0] == 1 and header.positions[4] == 0 and header.positions[8] is None
    fields = ["1250", "T-1", "TX1", "2026-11-26T10:00:00Z", "sale", "eur", "4242", ""]
    assert check(fields, header)[-1] is None
    assert check(["1250", "T-1", "R1", "2026-11-26T10:00:00Z", "void", "eur", "4242", ""], header)[-1] == (
        "missing_original_transaction_id"
    )
    assert Header.from_json(header.to_json()) == header


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([*COLUMNS, "note"], "unknown column"),
        ([*COLUMNS, "amount"], "twice"),
        (list(COLUMNS[1:]), "lacks terminal_id"),
        ([], "lacks"),
    ],
)
def test_bad_headers(fields: list[str], message: str) -> None:
    with pytest.raises(InvalidHeader, match=message):
        parse_header(fields)


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_byte_offsets_point_just_past_each_record_even_with_quoted_newlines() -> None:
    rows = [["a", "b\nc", "d"], ["é", "x,y", ""], ["1", '"q"', "2"]]
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    data = text.getvalue().encode()
    for size in (1, 3, 7, len(data)):
        lines = ByteCountingLines(_chunks(data, size))
        ends = []
        for record in csv_records(lines):
            ends.append(lines.consumed)
            assert record == rows[len(ends) - 1]
        assert ends[-1] == len(data)
        # Resuming at any record end reads exactly the records after it.
        for i, end in enumerate(ends):
            rest = ByteCountingLines(_chunks(data[end:], size), start=end)
            assert list(csv_records(rest)) == rows[i + 1 :]
            assert rest.consumed == len(data)


def test_blank_lines_are_skipped_and_a_last_line_without_newline_counts() -> None:
    data = b"a,b\n\n\nc,d"
    lines = ByteCountingLines([data])
    assert list(csv_records(lines)) == [["a", "b"], ["c", "d"]] and lines.consumed == len(data)


def test_unparseable_record_becomes_an_empty_record_not_an_error() -> None:
    data = b'a,b\nx,"unterminated\n'
    assert list(csv_records(ByteCountingLines([data]))) in ([["a", "b"], []], [["a", "b"], ["x", "unterminated\n"]])
    invalid_utf8 = list(csv_records(ByteCountingLines([b"T\xff,1\n"])))
    assert invalid_utf8 == [["T\ufffd", "1"]]
    assert check(with_(0, "T\ufffd"))[-1] == "invalid_terminal_id"
