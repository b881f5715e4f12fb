"""The PAN guard: find anything that looks like a card number in text, a request body or a CSV, without ever
repeating it.

The rule (``docs/api.md``, "Errors": ``pan_detected``): every string in the body, metadata and object keys included, is
*normalised* and then scanned for 13–19 digits passing the Luhn check → 422 ``pan_detected``.

Normalisation (:func:`normalise`), so that a card number cannot be disguised by its spelling: Unicode NFKC (full-width
``４１１１`` and other compatibility digits become ASCII, a non-breaking or ideographic space becomes a space), every
other decimal digit (Arabic-Indic, Devanagari, …) becomes its ASCII digit, and invisible format characters
(zero-width space and joiners, soft hyphen, word joiner, BOM, bidi marks) are removed.

What counts as one candidate: a *maximal* run of digits in which consecutive digits are joined by nothing or by up to
five separator characters: whitespace of any kind (space, tab, newline; in a CSV line not the line break), ``.``,
``-``, ``/``, ``\\``, ``_``, ``|``, ``·``, ``•`` and the Unicode dashes.  So ``4111.1111.1111.1111``,
``4111 - 1111 - 1111 - 1111``, ``4111/1111/1111/1111``, ``4111\t1111…`` and double spaces are all one run.  The run is a
candidate only when it holds 13 to 19 digits in all; a longer run (an IBAN's digits, a 24-digit order id) is not a card
number and is not searched for card-number-shaped pieces, which would flag roughly one in ten long numbers by chance.
The price: a PAN glued to more digits by a separator (``"4242 4242 4242 4242 123"``) is one 22-digit run that passes,
unless the PAN itself is written without separators (``"4242424242424242 12/29"``: a whole 13-19-digit block inside
a run that fails as a whole is checked on its own).
A run that touches an ASCII letter on either side is part of an identifier (a hexadecimal key, ``pi_3N…``), not a
card number: ``key-3a4111111111111111bf`` passes, ``card 4111111111111111`` and ``pan:4111111111111111`` do not.
Nor is a run that lies inside a canonical UUID (``8-4-4-4-12`` hexadecimal groups): its dashes would otherwise join
all-digit groups into a 13–19-digit run that passes Luhn about once in 10,000 random UUIDs (message ids, job ids).
Commas and colons do not join digits (amounts ``1,234,567``, clock times, CSV cells).  JSON integers are scanned too,
and so are floats with no fraction part (a PAN typed as a number is still a PAN); booleans are not.

Speed: the ingest runs this on every request and the worker on every message.  ASCII strings shorter than 13
characters are skipped before any regex work, ASCII strings skip normalisation (they are already normal), and the
regex only matches runs of 13+ digits; ``python -m engine.domain.pan`` prints the cost per typical payment body.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

__all__ = [
    "contains_pan",
    "find_pan",
    "find_pan_in_csv_bytes",
    "is_valid_card_last4",
    "luhn_valid",
    "mask_pans",
    "normalise",
    "validate_card_last4",
]

# What may stand between two digits of one run.  \s covers every Unicode space and line break.
_SEP_CHARS = r"._/\\|\-\u00b7\u2010-\u2015\u2022\u2212\u30fb"
_MAX_SEP = 5
# 13+ digits, each pair joined by nothing or up to five separators.  Greedy from the run's first digit, so every
# match is a whole run; runs of 20+ digits match too and are rejected by length below.
_RUN = re.compile(rf"[0-9](?:[\s{_SEP_CHARS}]{{0,{_MAX_SEP}}}[0-9]){{12,}}")
# The same inside one CSV line: the line break is never a separator (cells of two records are not one number).
_CSV_RUN = re.compile(rf"[0-9](?:(?:[^\S\r\n]|[{_SEP_CHARS}]){{0,{_MAX_SEP}}}[0-9]){{12,}}")
_CSV_RUN_BYTES = re.compile(rb"[0-9](?:[ \t\x0b\x0c._/\\|-]{0,%d}[0-9]){12,}" % _MAX_SEP)
_NOT_DIGIT = re.compile(r"[^0-9]")
_NOT_DIGIT_BYTES = re.compile(rb"[^0-9]")
# Luhn: the doubled digit's digit sum, by digit.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_MIN_DIGITS, _MAX_DIGITS = 13, 19
# An int with 13+ digits is at least this big.
_MIN_INT = 10 ** (_MIN_DIGITS - 1)
_LAST4 = re.compile(r"[0-9]{4}")
_KEY_HIT = object()  # stack marker: the enclosing object had a card number in a key


def luhn_valid(digits: str) -> bool:
    """True when the string of ASCII digits passes the Luhn (mod 10) check.  Raises :class:`ValueError` on a
    non-digit character."""
    total = 0
    double = False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if not 0 <= d <= 9:
            raise ValueError("luhn_valid takes ASCII digits only")
        total += _DOUBLED[d] if double else d
        double = not double
    return total % 10 == 0


def normalise(text: str) -> str:
    """``text`` as the scan sees it: NFKC, every Unicode decimal digit as its ASCII digit, format characters
    (zero-width space, joiners, soft hyphen, BOM, bidi marks: Unicode category Cf) removed.  ASCII comes back as is."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif ch.isdecimal():
            out.append(chr(48 + unicodedata.decimal(ch)))
        elif unicodedata.category(ch) != "Cf":
            out.append(ch)
    return "".join(out)


def _glued(text: str | bytes, start: int, end: int) -> bool:
    """True when the run at ``text[start:end]`` touches an ASCII letter: it is part of an identifier
    (``key-3a4111111111111111bf``, ``pi_3N…``), not a number someone typed.

    Without this rule about one random hexadecimal id in 250 (a UUID's 32 characters) holds a 13–19-digit stretch
    that passes Luhn, and idempotency keys, request ids and job ids would be refused at random.
    """
    for index in (start - 1, end):
        if 0 <= index < len(text):
            neighbour = text[index]
            char = chr(neighbour) if isinstance(neighbour, int) else neighbour
            if char.isascii() and char.isalpha():
                return True
    return False


# A canonical UUID; the scan looks for one only around a run that holds a dash.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID_LENGTH = 36


def _in_uuid(text: str | bytes, start: int, end: int) -> bool:
    """True when the run at ``text[start:end]`` lies inside a canonical UUID (a random id, not a number someone
    typed; a UUID's own groups are at most 12 digits, so only its dashes can make a card-number-long run)."""
    lo, hi = max(0, start - _UUID_LENGTH + 1), min(len(text), end + _UUID_LENGTH - 1)
    window = text[lo:hi]
    if isinstance(window, bytes):
        window = window.decode("ascii", "replace")
    if "-" not in window:
        return False
    return any(m.start() + lo <= start and end <= m.end() + lo for m in _UUID.finditer(window))


def _is_card(text: str, match: re.Match[str]) -> bool:
    digits = _NOT_DIGIT.sub("", match.group())
    if _glued(text, match.start(), match.end()) or _in_uuid(text, match.start(), match.end()):
        return False
    if _MIN_DIGITS <= len(digits) <= _MAX_DIGITS and luhn_valid(digits):
        return True
    return len(digits) > _MIN_DIGITS and _has_whole_block(match.group())


# 13-19 digits with no separator inside, not touching another digit.
_BLOCK = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


def _has_whole_block(run: str) -> bool:
    """A run that is not one card number as a whole may still start or end with one written without separators:
    ``4111111111111111 12/29`` (a PAN and its expiry), ``exp 12/29 378282246310005``.  A block of 13-19 digits
    standing alone would be flagged anyway, so checking it inside a longer run adds no false positives of its own."""
    return any(luhn_valid(block.group()) for block in _BLOCK.finditer(run))


def _any_card(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    for match in pattern.finditer(text):
        if _is_card(text, match):
            return match
    return None


def contains_pan(text: str) -> bool:
    """True when ``text`` (after :func:`normalise`) holds a card number: a run of 13–19 digits passing Luhn."""
    if text.isascii():
        if len(text) < _MIN_DIGITS:
            return False
    else:
        text = normalise(text)
        if len(text) < _MIN_DIGITS:
            return False
    return _any_card(_RUN, text) is not None


#: What :func:`mask_pans` puts in place of a card number.
MASK = "[card number redacted]"


def mask_pans(text: str) -> str:
    """``text`` with every card number replaced by :data:`MASK` (for log lines and tracebacks).  Text holding none
    comes back unchanged; text holding one comes back normalised (:func:`normalise`) around the masks."""
    if not contains_pan(text):
        return text
    text = normalise(text)

    def replace(match: re.Match[str]) -> str:
        return MASK if _is_card(text, match) else match.group()

    return _RUN.sub(replace, text)


def find_pan_in_csv_bytes(data: bytes) -> int | None:
    """The 0-based index of the line of ``data`` (complete CSV lines, UTF-8) holding the first card number, or None.

    Same rule as :func:`contains_pan` except that a line break never joins digits.  Bytes that are not UTF-8 are
    read as U+FFFD (not a digit, not a separator).
    """
    if data.isascii():
        for match in _CSV_RUN_BYTES.finditer(data):
            digits = _NOT_DIGIT_BYTES.sub(b"", match.group()).decode()
            if _glued(data, match.start(), match.end()) or _in_uuid(data, match.start(), match.end()):
                continue
            whole = len(digits) <= _MAX_DIGITS and luhn_valid(digits)
            if whole or (len(digits) > _MIN_DIGITS and _has_whole_block(match.group().decode())):
                return data.count(b"\n", 0, match.start())
        return None
    text = data.decode("utf-8", "replace")
    # Per line: NFKC never adds or removes a "\n", but normalising line by line keeps the count exact regardless.
    for index, line in enumerate(text.split("\n")):
        if _any_card(_CSV_RUN, normalise(line)) is not None:
            return index
    return None


def _is_big_int(node: Any) -> bool:
    return isinstance(node, int) and not isinstance(node, bool) and abs(node) >= _MIN_INT


def _is_big_whole_float(node: Any) -> bool:
    # A PAN sent as a JSON number with a fraction part of zero (4111111111111111.0) is still a PAN; below 2**63
    # every such float converts exactly to the integer it prints as.
    return isinstance(node, float) and node.is_integer() and _MIN_INT <= abs(node) < 2**63


def _walk(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    """Yield the path of every hit in document order (keys before their values)."""
    # An explicit stack, not recursion: a hostile, deeply nested body must not raise RecursionError here.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if node is _KEY_HIT:
            yield where
        elif isinstance(node, str):
            if contains_pan(node):
                yield where
        elif isinstance(node, dict):
            children: list[tuple[Any, tuple[str | int, ...]]] = []
            for key, child in node.items():
                if isinstance(key, str) and contains_pan(key):
                    # Report the object holding the key (the key itself is the secret), in document order.
                    children.append((_KEY_HIT, where))
                children.append((child, (*where, key)))
            stack.extend(reversed(children))
        elif isinstance(node, (list, tuple)):
            stack.extend((child, (*where, i)) for i, child in reversed(list(enumerate(node))))
        elif (_is_big_int(node) or _is_big_whole_float(node)) and contains_pan(str(int(abs(node)))):
            yield where


def find_pan(value: Any) -> str | None:
    """The dotted path of the first card number in a JSON-like value, or None when there is none.

    Paths are the API's dotted ``param`` form (``docs/api.md``): ``"metadata.note"``, ``"items.2.description"``; a card
    number in an object *key* reports the object (``"metadata"``); a hit in the value itself (a bare string) is ``"$"``.
    The number itself is never returned or logged.
    """
    for where in _walk(value, ()):
        return ".".join(str(part) for part in where) if where else "$"
    return None


def is_valid_card_last4(value: object) -> bool:
    """True when ``value`` is a string of exactly four ASCII digits."""
    return isinstance(value, str) and _LAST4.fullmatch(value) is not None


def validate_card_last4(value: object) -> str:
    """Return ``value`` when it is exactly four ASCII digits; raise :class:`ValueError` otherwise (the message
    does not repeat the value, which might be a whole card number)."""
    if not is_valid_card_last4(value):
        raise ValueError("card_last4 must be exactly 4 digits")
    assert isinstance(value, str)
    return value


def _benchmark() -> None:  # pragma: no cover - a measurement, run by hand
    import json
    import timeit

    body = {
        "customer": {
            "id": "cus_8f2a6c1e9b",
            "email": "anna.schmidt@example.de",
            "country": "DE",
            "vat_id": "DE136695976",
            "type": "business",
        },
        "amount": 129900,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "tax_behavior": "exclusive",
        "tax_category": "standard",
        "description": "Order 2026-000123: 3 × annual licence, invoice INV-2026-11-000457",
        "metadata": {
            "order_id": "ORD-5544332211",
            "cart": "sku-1001,sku-2002,sku-3003",
            "iban_hint": "DE89 3704 0044 0532 0130 00",
            "campaign": "black-friday-2026",
        },
    }
    parsed = json.loads(json.dumps(body))
    assert find_pan(parsed) is None
    runs = 20000
    seconds = min(timeit.repeat(lambda: find_pan(parsed), number=runs, repeat=5))
    print(f"find_pan on a typical payment body ({len(json.dumps(body))} bytes): {seconds / runs * 1e6:.1f} µs")


if __name__ == "__main__":  # pragma: no cover
    _benchmark()
