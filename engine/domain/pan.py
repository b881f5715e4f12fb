"""The PAN guard: find anything that looks like a card number in a request body, without ever repeating it.

The rule (``docs/api.md``, "Errors": ``pan_detected``): every string in the body, metadata and object keys included, is
scanned for 13–19 digits, single spaces or dashes allowed between them, passing the Luhn check → 422 ``pan_detected``.

What counts as one candidate: a *maximal* run of ASCII digits in which consecutive digits are joined by nothing,
one space or one dash.  The run is a candidate only when it holds 13 to 19 digits in all; a longer run (an IBAN's
digits, a 24-digit order id) is not a card number and is not searched for card-number-shaped pieces, which would
flag roughly one in ten long numbers by chance.  The price: a PAN glued to more digits by a single space
(``"4242 4242 4242 4242 123"``) is one 19-digit run that fails Luhn and passes.  JSON integers are scanned too
(a PAN typed as a number is still a PAN); floats and booleans are not.

Speed: the ingest runs this on every request.  Strings shorter than 13 characters are skipped before any regex
work, and the regex only matches runs of 13+ digits; ``python -m engine.domain.pan`` prints the cost per typical
payment body (12–20 µs on the 2-core test machine, ~500-byte body).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["find_pan", "is_valid_card_last4", "luhn_valid", "validate_card_last4"]

# 13+ ASCII digits, each pair joined by nothing, one space or one dash.  Greedy from the run's first digit, so
# every match is a whole run; runs of 20+ digits match too and are rejected by length below.
_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
_SEPARATORS = str.maketrans("", "", " -")
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


def _has_pan(text: str) -> bool:
    if len(text) < _MIN_DIGITS:
        return False
    for match in _RUN.finditer(text):
        digits = match.group().translate(_SEPARATORS)
        if _MIN_DIGITS <= len(digits) <= _MAX_DIGITS and luhn_valid(digits):
            return True
    return False


def _walk(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    """Yield the path of every hit in document order (keys before their values)."""
    # An explicit stack, not recursion: a hostile, deeply nested body must not raise RecursionError here.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if node is _KEY_HIT:
            yield where
        elif isinstance(node, str):
            if _has_pan(node):
                yield where
        elif isinstance(node, dict):
            children: list[tuple[Any, tuple[str | int, ...]]] = []
            for key, child in node.items():
                if isinstance(key, str) and _has_pan(key):
                    # Report the object holding the key (the key itself is the secret), in document order.
                    children.append((_KEY_HIT, where))
                children.append((child, (*where, key)))
            stack.extend(reversed(children))
        elif isinstance(node, (list, tuple)):
            stack.extend((child, (*where, i)) for i, child in reversed(list(enumerate(node))))
        elif (
            isinstance(node, int) and not isinstance(node, bool) and abs(node) >= _MIN_INT and _has_pan(str(abs(node)))
        ):
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
