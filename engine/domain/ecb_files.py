"""The ECB's files of euro reference rates, read and written in their own formats.

Formats read (:func:`parse`, which tells them apart by their first bytes):

* **Historical CSV** (``eurofxref-hist.csv``, also inside ``eurofxref-hist.zip``): a header ``Date,USD,JPY,…,``
  then one line per publication day, newest first, ``2024-07-01,1.0745,173.15,…,``.  Every line ends with a comma
  (a trailing empty column), and a currency the ECB did not publish that day (not yet, or no longer: CYP, EEK,
  HRK, RUB …) reads ``N/A``.
* **Daily CSV** (``eurofxref.csv`` inside ``eurofxref.zip``): ``Date, USD, JPY, …`` and one line
  ``01 July 2024, 1.0745, 173.15, …`` (spaces after the commas, the day spelt out).
* **XML** (``eurofxref-daily.xml``, ``eurofxref-hist-90d.xml``, ``eurofxref-hist.xml``): a ``gesmes:Envelope``
  (namespace ``http://www.gesmes.org/xml/2002-08-01``) whose ``Cube`` (namespace
  ``http://www.ecb.int/vocabulary/2002-08-01/eurofxref``) holds one ``<Cube time='2024-06-28'>`` per day, each
  holding ``<Cube currency='USD' rate='1.0705'/>`` per currency.

Rates are kept as the decimal strings the file spells (the CSV drops trailing zeros the XML keeps: ``395.1`` and
``395.10`` are the same rate).  A malformed file raises :class:`EcbFileError` naming the line or element; nothing
is guessed.  XML is parsed with defusedxml (no DTDs, no entities).  :func:`render_daily_xml` and
:func:`render_hist_csv` write the same formats (fixtures of the local stack and the tests).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeElementTree
from defusedxml.common import DefusedXmlException

from engine.domain.conversion import InvalidRate, parse_rate
from engine.errors import InvalidInput

__all__ = [
    "CUBE_NS",
    "GESMES_NS",
    "EcbFileError",
    "PublishedRate",
    "parse",
    "render_daily_xml",
    "render_hist_csv",
]

GESMES_NS = "http://www.gesmes.org/xml/2002-08-01"
CUBE_NS = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"
# A currency the ECB did not publish that day.
_NOT_PUBLISHED = "N/A"
# A rates file is a few megabytes at most (the whole history since 1999 is about 1.8 MB of CSV).
MAX_FILE_BYTES = 64 * 1024 * 1024


class EcbFileError(InvalidInput):
    """A file that is not one of the ECB's rate formats, or a line or element of it that is malformed."""


@dataclass(frozen=True, slots=True)
class PublishedRate:
    """One rate of a file: ``rate`` units of ``currency`` (lower case) per euro, published for ``day``."""

    day: date
    currency: str
    rate: str


def parse(data: bytes, name: str = "file") -> list[PublishedRate]:
    """Every rate of an ECB file (historical or daily CSV, daily or historical XML, or a zip holding one CSV),
    in file order.  ``name`` is used in error messages.

    Raises :class:`EcbFileError` for an empty, oversized or unrecognised file, a malformed line or element, an
    invalid date or rate, a currency listed twice, or one day given twice with different rates.
    """
    if len(data) > MAX_FILE_BYTES:
        raise EcbFileError(f"{name}: {len(data)} bytes is too large for a rates file")
    if data.startswith(b"PK\x03\x04"):
        return parse(_unzip(data, name), name)
    text = _decode(data, name).lstrip("\ufeff")
    head = text.lstrip()
    if not head:
        raise EcbFileError(f"{name}: the file is empty")
    if head.startswith("<"):
        rates = _parse_xml(head, name)
    elif head[:4].lower() == "date":
        rates = _parse_csv(text, name)
    else:
        raise EcbFileError(f"{name}: neither an ECB CSV (a 'Date,USD,…' header) nor an ECB XML envelope")
    _check_consistent(rates, name)
    return rates


def _unzip(data: bytes, name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise EcbFileError(f"{name}: a rates zip holds one file, this one holds {len(members)}")
            if members[0].file_size > MAX_FILE_BYTES:
                raise EcbFileError(f"{name}: {members[0].filename} is too large for a rates file")
            return archive.read(members[0])
    except zipfile.BadZipFile as exc:
        raise EcbFileError(f"{name}: not a readable zip ({exc})") from exc


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EcbFileError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _parse_csv(text: str, name: str) -> list[PublishedRate]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip() for cell in next(reader)]
    if header[0].lower() != "date":
        raise EcbFileError(f"{name}: line 1: the first column must be 'Date', got {header[0]!r}")
    # The historical file ends every line with a comma: an unnamed last column, always empty.
    columns = header[1:]
    trailing_empty = bool(columns) and columns[-1] == ""
    if trailing_empty:
        columns = columns[:-1]
    if not columns:
        raise EcbFileError(f"{name}: line 1: no currency columns")
    currencies: list[str] = []
    for cell in columns:
        if len(cell) != 3 or not cell.isascii() or not cell.isalpha():
            raise EcbFileError(f"{name}: line 1: {cell!r} is not a currency code")
        if cell.lower() in currencies:
            raise EcbFileError(f"{name}: line 1: {cell} is listed twice")
        currencies.append(cell.lower())
    rates: list[PublishedRate] = []
    for line_no, row in enumerate(reader, start=2):
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells):
            continue
        width = len(currencies) + 1 + trailing_empty
        if len(cells) != width or (trailing_empty and cells[-1] != ""):
            raise EcbFileError(
                f"{name}: line {line_no}: {len(cells)} values for {width} columns"
                + (" (like its header, every line ends with a comma)" if trailing_empty else "")
            )
        if trailing_empty:
            cells = cells[:-1]
        day = _csv_date(cells[0], name, line_no)
        for cur, cell in zip(currencies, cells[1:], strict=True):
            if cell == _NOT_PUBLISHED:
                continue
            rates.append(PublishedRate(day, cur, _rate(cell, f"{name}: line {line_no}, {cur.upper()}")))
    return rates


def _csv_date(text: str, name: str, line_no: int) -> date:
    for fmt in ("%Y-%m-%d", "%d %B %Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise EcbFileError(f"{name}: line {line_no}: {text!r} is not a date (2024-07-01 or 01 July 2024)")


def _rate(text: str, where: str) -> str:
    try:
        parse_rate(text)
    except InvalidRate as exc:
        raise EcbFileError(f"{where}: {exc}") from exc
    return text


def _parse_xml(text: str, name: str) -> list[PublishedRate]:
    try:
        root = SafeElementTree.fromstring(text)
    except DefusedXmlException as exc:
        raise EcbFileError(f"{name}: refused XML ({type(exc).__name__}: DTDs and entities are not accepted)") from exc
    except SafeElementTree.ParseError as exc:
        raise EcbFileError(f"{name}: not well-formed XML ({exc})") from exc
    if root.tag != f"{{{GESMES_NS}}}Envelope":
        raise EcbFileError(f"{name}: the root element is {root.tag!r}, not the ECB's gesmes:Envelope")
    outer = root.findall(f"{{{CUBE_NS}}}Cube")
    if len(outer) != 1:
        raise EcbFileError(f"{name}: the envelope must hold one eurofxref Cube, it holds {len(outer)}")
    rates: list[PublishedRate] = []
    for day_cube in outer[0]:
        day = _xml_day(day_cube, name)
        for cube in day_cube:
            code, value = cube.get("currency"), cube.get("rate")
            where = f"{name}: <Cube time='{day.isoformat()}'> <Cube currency={code!r} rate={value!r}>"
            if cube.tag != f"{{{CUBE_NS}}}Cube" or code is None or value is None:
                raise EcbFileError(f"{where}: expected <Cube currency='…' rate='…'/>")
            if len(code) != 3 or not code.isascii() or not code.isalpha():
                raise EcbFileError(f"{where}: {code!r} is not a currency code")
            rates.append(PublishedRate(day, code.lower(), _rate(value.strip(), where)))
    return rates


def _xml_day(cube: Element, name: str) -> date:
    stamp = cube.get("time")
    if cube.tag != f"{{{CUBE_NS}}}Cube" or stamp is None:
        raise EcbFileError(f"{name}: expected <Cube time='YYYY-MM-DD'>, got <{cube.tag} {dict(cube.attrib)}>")
    try:
        return date.fromisoformat(stamp)
    except ValueError as exc:
        raise EcbFileError(f"{name}: <Cube time={stamp!r}>: not a date") from exc


def _check_consistent(rates: Iterable[PublishedRate], name: str) -> None:
    seen: dict[tuple[date, str], str] = {}
    for r in rates:
        known = seen.setdefault((r.day, r.currency), r.rate)
        if parse_rate(known) != parse_rate(r.rate):
            raise EcbFileError(
                f"{name}: {r.currency.upper()} on {r.day.isoformat()} is given twice: {known} and {r.rate}"
            )


def render_daily_xml(days: Mapping[date, Mapping[str, str]]) -> bytes:
    """An XML file in the ECB's format (``eurofxref-daily.xml`` for one day, ``eurofxref-hist-90d.xml`` for
    several, newest first), currencies upper case in the order given."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<gesmes:Envelope xmlns:gesmes="{GESMES_NS}" xmlns="{CUBE_NS}">',
        "\t<gesmes:subject>Reference rates</gesmes:subject>",
        "\t<gesmes:Sender>",
        "\t\t<gesmes:name>European Central Bank</gesmes:name>",
        "\t</gesmes:Sender>",
        "\t<Cube>",
    ]
    for day in sorted(days, reverse=True):
        lines.append(f"\t\t<Cube time='{day.isoformat()}'>")
        for code, rate in days[day].items():
            lines.append(f"\t\t\t<Cube currency='{code.upper()}' rate='{parse_rate(rate)}'/>")
        lines.append("\t\t</Cube>")
    lines += ["\t</Cube>", "</gesmes:Envelope>", ""]
    return "\n".join(lines).encode("utf-8")


def render_hist_csv(days: Mapping[date, Mapping[str, str]], columns: Sequence[str]) -> bytes:
    """A CSV in the format of ``eurofxref-hist.csv``: the ``columns`` (currency codes) in order, newest day
    first, ``N/A`` where a day has no rate for a column, every line ending with a comma."""
    out = ["Date," + ",".join(c.upper() for c in columns) + ","]
    for day in sorted(days, reverse=True):
        rates = {k.lower(): v for k, v in days[day].items()}
        cells = [str(parse_rate(rates[c.lower()])) if c.lower() in rates else "N/A" for c in columns]
        out.append(day.isoformat() + "," + ",".join(cells) + ",")
    return ("\n".join(out) + "\n").encode("utf-8")
