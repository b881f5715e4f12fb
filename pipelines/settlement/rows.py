"""The POS batch CSV: header, rows, and the per-row checks that need no database.

``docs/settlement.md`` ("The CSV"): a header row, then one row per transaction with the
columns ``terminal_id, transaction_id, timestamp, type, amount, currency, card_last4, auth_code,
original_transaction_id``.  The header may list them in any order (names are matched case-insensitively); the
ninth column may be left out of the header, which makes every refund and void of the file a reject.

A row that fails a check here is *rejected* with one reason code (the first check it fails, in column order).
What needs the database — duplicates and "a refund or void refers to a known sale" — is decided later, set-based
(:mod:`pipelines.settlement.store`).  Row numbers are 1-based over data rows (the header is not a row); blank
lines are skipped and do not count.

This module does no I/O beyond reading the byte chunks it is given, keeps nothing per row, and is written for speed:
the worker runs :meth:`RowValidator.check` once per row of batches of a million rows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.domain.money import SUPPORTED_CURRENCIES, currency
from engine.errors import InvalidInput

__all__ = [
    "COLUMNS",
    "REASONS",
    "REQUIRED_COLUMNS",
    "ByteCountingLines",
    "Header",
    "InvalidHeader",
    "RowValidator",
    "Staged",
    "parse_header",
]

REQUIRED_COLUMNS = (
    "terminal_id",
    "transaction_id",
    "timestamp",
    "type",
    "amount",
    "currency",
    "card_last4",
    "auth_code",
)
COLUMNS = (*REQUIRED_COLUMNS, "original_transaction_id")
TYPES = frozenset({"sale", "refund", "void"})

#: Every reason a row can be rejected for (``rejects[].reason``), with what it means; docs/settlement.md lists them.
REASONS: dict[str, str] = {
    "malformed_row": "the row does not have one value per header column, or is not valid CSV",
    "invalid_terminal_id": "terminal_id is empty, longer than 64 characters or not [A-Za-z0-9._:/-]",
    "invalid_transaction_id": "transaction_id is empty, longer than 128 characters or not printable ASCII",
    "invalid_timestamp": "timestamp is not an ISO 8601 date-time",
    "timestamp_missing_offset": "timestamp has no UTC offset (Z or ±hh:mm)",
    "timestamp_too_old": "timestamp is before 2000-01-01T00:00:00Z",
    "timestamp_in_future": "timestamp is more than 24 h after the batch was uploaded",
    "unknown_type": "type is not sale, refund or void",
    "invalid_amount": "amount is not a whole number of minor units (digits only, at most 12)",
    "amount_not_positive": "amount is 0",
    "amount_invalid_precision": "amount does not fit the currency's exponent (three-decimal: ends in 0; ISK: in 00)",
    "unsupported_currency": "currency is not an ISO 4217 code Stripe supports",
    "invalid_card_last4": "card_last4 is not exactly 4 digits",
    "invalid_auth_code": "auth_code is not 1 to 12 letters or digits (it may be empty)",
    "missing_original_transaction_id": "a refund or void without original_transaction_id",
    "unexpected_original_transaction_id": "a sale with an original_transaction_id",
    "invalid_original_transaction_id": "original_transaction_id is malformed or the row's own transaction_id",
    "unknown_original_transaction": "a refund or void whose original is not a known sale of the same terminal",
    "original_currency_mismatch": "a refund or void in another currency than its original sale",
    "exceeds_original_amount": "a refund or void of more than its original sale",
    "refunds_exceed_original": (
        "a refund or void that, with the refunds and voids of its sale already settled (this batch's earlier rows, "
        "earlier batches), adds up to more than the sale"
    ),
}

_TERMINAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
# Printable ASCII, no leading or trailing space (ids are compared byte for byte, so " T1" and "T1" must not both
# pass as different transactions).
_TXN = re.compile(r"[!-~](?:[ -~]{0,126}[!-~])?")
_AUTH = re.compile(r"[A-Za-z0-9]{1,12}")
_LAST4 = re.compile(r"[0-9]{4}")
_AMOUNT = re.compile(r"[0-9]{1,12}")
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_AHEAD = timedelta(hours=24)
# Stripe's granularity per supported currency (10 for three-decimal currencies, 100 for ISK, else 1).
_STEP: dict[str, int] = {code: currency(code).step for code in SUPPORTED_CURRENCIES}
_ID_KEEP = 128  # how much of a rejected row's raw transaction/terminal id the report keeps


class InvalidHeader(InvalidInput):
    """The first line is not the header of ``docs/settlement.md`` (a column missing, unknown or repeated); the batch
    cannot be read at all.  The message names the problem."""


@dataclass(frozen=True)
class Header:
    """Where each documented column sits in the file's rows: ``positions[i]`` is the index of ``COLUMNS[i]``, or
    None for ``original_transaction_id`` left out of the header.  ``width`` is the number of columns a row must
    have."""

    positions: tuple[int | None, ...]
    width: int

    def to_json(self) -> dict[str, object]:
        return {"positions": list(self.positions), "width": self.width}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Header:
        positions = data["positions"]
        width = data["width"]
        assert isinstance(positions, list) and isinstance(width, int)
        return cls(tuple(positions), width)


def parse_header(fields: list[str]) -> Header:
    """The :class:`Header` of a header row.  Raises :class:`InvalidHeader` naming a missing, unknown or repeated
    column."""
    names = [f.strip().lstrip("\ufeff").strip().lower() for f in fields]
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name not in COLUMNS:
            raise InvalidHeader(f"unknown column {name[:40]!r} in the header (expected {', '.join(COLUMNS)})")
        if name in seen:
            raise InvalidHeader(f"column {name!r} appears twice in the header")
        seen[name] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        raise InvalidHeader(f"the header lacks {', '.join(missing)}")
    return Header(tuple(seen.get(c) for c in COLUMNS), len(names))


#: One row as staged for the database: (row_no, terminal_id, transaction_id, occurred_at, type, amount, currency,
#: card_last4, auth_code, original_transaction_id, reason).  A rejected row keeps only its number, its raw ids (cut
#: to 128 characters) and its reason.
Staged = tuple[
    int, str | None, str | None, datetime | None, str | None, int | None, str | None, str | None, str | None,
    str | None, str | None,
]  # fmt: skip


class RowValidator:
    """Checks rows of one batch against the rules of ``docs/settlement.md``.

    ``uploaded_at`` is the batch's reference time for "at most 24 h ahead": the job's creation, not the clock, so
    a batch resumed after a crash hours later decides every row exactly as the first attempt did.
    """

    def __init__(self, header: Header, uploaded_at: datetime) -> None:
        if uploaded_at.tzinfo is None:
            raise ValueError("uploaded_at must carry a time zone")
        self.header = header
        self._latest = uploaded_at + _AHEAD

    def check(self, row_no: int, fields: list[str]) -> Staged:
        """The staged form of data row ``row_no``: validated and normalised (type and currency lower case), or
        rejected with the first reason that applies.  Never raises for bad input."""
        pos = self.header.positions
        if len(fields) != self.header.width:
            return _reject(row_no, fields, pos, "malformed_row")
        terminal = fields[pos[0]]  # type: ignore[index]
        txn = fields[pos[1]]  # type: ignore[index]
        if _TERMINAL.fullmatch(terminal) is None:
            return _reject(row_no, fields, pos, "invalid_terminal_id")
        if _TXN.fullmatch(txn) is None:
            return _reject(row_no, fields, pos, "invalid_transaction_id")
        raw_ts = fields[pos[2]]  # type: ignore[index]
        try:
            ts = datetime.fromisoformat(raw_ts)
        except ValueError:
            return _reject(row_no, fields, pos, "invalid_timestamp")
        if ts.tzinfo is None:
            return _reject(row_no, fields, pos, "timestamp_missing_offset")
        if ts < _EARLIEST:
            return _reject(row_no, fields, pos, "timestamp_too_old")
        if ts > self._latest:
            return _reject(row_no, fields, pos, "timestamp_in_future")
        kind = fields[pos[3]].lower()  # type: ignore[index]
        if kind not in TYPES:
            return _reject(row_no, fields, pos, "unknown_type")
        raw_amount = fields[pos[4]]  # type: ignore[index]
        if _AMOUNT.fullmatch(raw_amount) is None:
            return _reject(row_no, fields, pos, "invalid_amount")
        amount = int(raw_amount)
        if amount == 0:
            return _reject(row_no, fields, pos, "amount_not_positive")
        cur = fields[pos[5]].lower()  # type: ignore[index]
        step = _STEP.get(cur)
        if step is None:
            return _reject(row_no, fields, pos, "unsupported_currency")
        if amount % step:
            return _reject(row_no, fields, pos, "amount_invalid_precision")
        last4 = fields[pos[6]]  # type: ignore[index]
        if _LAST4.fullmatch(last4) is None:
            return _reject(row_no, fields, pos, "invalid_card_last4")
        auth = fields[pos[7]]  # type: ignore[index]
        if auth and _AUTH.fullmatch(auth) is None:
            return _reject(row_no, fields, pos, "invalid_auth_code")
        original = fields[pos[8]] if pos[8] is not None else ""
        if kind == "sale":
            if original:
                return _reject(row_no, fields, pos, "unexpected_original_transaction_id")
            original_or_none = None
        else:
            if not original:
                return _reject(row_no, fields, pos, "missing_original_transaction_id")
            if _TXN.fullmatch(original) is None or original == txn:
                return _reject(row_no, fields, pos, "invalid_original_transaction_id")
            original_or_none = original
        return (row_no, terminal, txn, ts, kind, amount, cur, last4, auth or None, original_or_none, None)


def _reject(row_no: int, fields: list[str], pos: tuple[int | None, ...], reason: str) -> Staged:
    terminal = _field(fields, pos[0])
    txn = _field(fields, pos[1])
    return (row_no, terminal, txn, None, None, None, None, None, None, None, reason)


def _field(fields: list[str], index: int | None) -> str | None:
    if index is None or index >= len(fields):
        return None
    # NUL cannot be stored in a PostgreSQL text value; the report shows the id as far as it is printable.
    value = fields[index][:_ID_KEEP].replace("\x00", "")
    return value or None


class ByteCountingLines:
    """Lines of a byte stream as ``str`` for :func:`csv.reader`, counting the bytes handed out.

    :func:`csv.reader` pulls one physical line at a time and only as many as the record it is building needs, so
    after it yields a record :attr:`consumed` is the byte offset just past that record: a resumable position for a
    ranged GET.  Lines keep their terminators (the csv module needs them inside quoted fields).  Bytes that are not
    UTF-8 become U+FFFD, which no field check accepts, so such a row is rejected rather than the batch failed.
    Memory: one chunk plus one line.
    """

    def __init__(self, chunks: Iterable[bytes], start: int = 0) -> None:
        self._chunks = iter(chunks)
        self.consumed = start

    def __iter__(self) -> Iterator[str]:
        carry = b""
        for chunk in self._chunks:
            if not chunk:
                continue
            data = carry + chunk if carry else chunk
            start = 0
            while True:
                end = data.find(b"\n", start)
                if end < 0:
                    break
                line = data[start : end + 1]
                self.consumed += len(line)
                yield line.decode("utf-8", "replace")
                start = end + 1
            carry = data[start:]
        if carry:
            self.consumed += len(carry)
            yield carry.decode("utf-8", "replace")


def csv_records(lines: ByteCountingLines) -> Iterator[list[str]]:
    """Records of the CSV, blank lines skipped.  A record the csv module cannot parse (a NUL byte, an unclosed
    quote at the end of the file) is yielded as ``[]`` — one field short of any header — so it is rejected as
    ``malformed_row`` instead of failing the batch."""
    reader = csv.reader(iter(lines), strict=False)
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield []
            continue
        if record:
            yield record
