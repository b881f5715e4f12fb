"""CSV cells a spreadsheet will not run: formula injection neutralised (issue 14 item 11).

Excel, LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and a
leading tab or carriage return can hide one), so a ``transaction_id`` of ``=HYPERLINK(…)`` or ``+cmd|'/C calc'!A0``
copied into a report would run on the reader's machine.  Every text cell of every CSV the engine writes passes
through :func:`neutralise`, which prefixes such a cell with a single quote (the OWASP recommendation): the
spreadsheet shows the text, the quote says it was altered.  Numbers (amounts, negative ones included) are not text
and are written as they are.
"""

from __future__ import annotations

from typing import Any

#: First characters that make a spreadsheet read a cell as a formula (or hide one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``value`` with a ``'`` in front when it is text starting with one of :data:`FORMULA_STARTS`; anything else
    (numbers, None, other text) unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_row(row: Any) -> list[Any]:
    """Every cell of ``row`` through :func:`neutralise`."""
    return [neutralise(v) for v in row]
