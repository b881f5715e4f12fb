"""Small helpers shared by commands: JSON output, tables, errors with the right exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import click

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def print_table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> None:
    """Print ``rows`` as an aligned plain-text table with the given ``columns``."""
    cols = list(columns)
    cells = [[_cell(row.get(c)) for c in cols] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def money(amount: Any, currency: Any) -> str:
    """An amount in minor units as a human table shows it: ``money(750000, "eur") == "7,500.00 EUR"`` (the
    currency's own decimals; ``--json`` keeps minor units).  Anything unformattable is shown as it is."""
    from engine.domain.money import format_amount

    try:
        text = format_amount(amount, str(currency))
    except Exception:  # an unknown currency or a missing amount: show what there is
        return "" if amount is None else f"{amount} {str(currency or '').upper()}".strip()
    number, _, code = text.partition(" ")
    sign = "-" if number.startswith("-") else ""
    units, dot, minor = number.lstrip("-").partition(".")
    return f"{sign}{int(units):,}{dot}{minor} {code}"


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters at a word boundary where one is near, ending with "…" when cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    space = cut.rfind(" ")
    if space >= width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def fail(message: str, code: int = EXIT_CHECK_FAILED) -> NoReturn:
    """Print ``message`` on stderr and exit with ``code`` (1 by default: a check failed)."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def is_terminal() -> bool:
    """True when stdout is a terminal (progress bars and prompts only then)."""
    return sys.stdout.isatty()
