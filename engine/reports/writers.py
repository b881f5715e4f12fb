"""Streaming writers: CSV rows and a JSON object written piece by piece into a byte sink, in constant memory.

A sink is anything with ``write(bytes)``: an :class:`~engine.adapters.s3_stream.S3StreamWriter` (a report going to
S3 part by part), a file, a :class:`io.BytesIO`.  Writes are buffered (64 KiB) so a sink sees few, large writes.
Amounts are written as the integers they are; JSON values that are not JSON types (dates) as strings.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from engine.domain.spreadsheet import neutralise, neutralise_row

FLUSH_BYTES = 64 * 1024


class Sink(Protocol):
    """Where a writer's bytes go."""

    def write(self, data: bytes, /) -> Any: ...


class CsvStream:
    """A CSV file of ``columns`` written row by row into ``sink`` (header first, ``\\n`` line ends; a missing or
    None value is an empty cell; text that a spreadsheet would run as a formula is neutralised,
    :mod:`engine.domain.spreadsheet`).  :meth:`close` flushes what is buffered; it does not close the sink."""

    def __init__(self, sink: Sink, columns: Sequence[str]) -> None:
        self._sink = sink
        self._columns = list(columns)
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\n")
        self._csv.writerow(neutralise_row(self._columns))
        self.rows = 0

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row; keys outside the columns are ignored."""
        self._csv.writerow(["" if row.get(c) is None else neutralise(row.get(c)) for c in self._columns])
        self.rows += 1
        if self._text.tell() >= FLUSH_BYTES:
            self._flush()

    def write_all(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append every row; returns how many."""
        for row in rows:
            self.write(row)
        return self.rows

    def _flush(self) -> None:
        data = self._text.getvalue()
        if data:
            self._sink.write(data.encode("utf-8"))
        self._text.seek(0)
        self._text.truncate()

    def close(self) -> None:
        """Flush the buffer into the sink."""
        self._flush()


class JsonStream:
    """One JSON object written into ``sink`` field by field; an array field may be streamed item by item
    (:meth:`begin_array`, :meth:`item`, :meth:`end_array`).  :meth:`close` writes the closing brace and flushes.

    Raises :class:`RuntimeError` when fields are written inside an open array or after :meth:`close`.
    """

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._buffer = io.StringIO()
        self._buffer.write("{")
        self._fields = 0
        self._items: int | None = None
        self._closed = False
        self.items = 0

    def _put(self, text: str) -> None:
        self._buffer.write(text)
        if self._buffer.tell() >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        data = self._buffer.getvalue()
        if data:
            self._sink.write(data.encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def _key(self, name: str) -> None:
        if self._closed or self._items is not None:
            raise RuntimeError("a field cannot be written inside an array or after close()")
        self._put(("," if self._fields else "") + json.dumps(name) + ":")
        self._fields += 1

    def field(self, name: str, value: Any) -> None:
        """Write ``"name": value``."""
        self._key(name)
        self._put(_dumps(value))

    def fields(self, values: Mapping[str, Any]) -> None:
        """Write every item of ``values`` as a field, in order."""
        for name, value in values.items():
            self.field(name, value)

    def begin_array(self, name: str) -> None:
        """Open the array field ``name``."""
        self._key(name)
        self._put("[")
        self._items = 0

    def item(self, value: Any) -> None:
        """Append ``value`` to the open array."""
        if self._items is None:
            raise RuntimeError("item() needs begin_array() first")
        self._put(("," if self._items else "") + _dumps(value))
        self._items += 1
        self.items += 1

    def end_array(self) -> None:
        """Close the open array."""
        if self._items is None:
            raise RuntimeError("end_array() needs begin_array() first")
        self._put("]")
        self._items = None

    def close(self) -> None:
        """Write the closing brace and flush into the sink."""
        if self._items is not None:
            self.end_array()
        if not self._closed:
            self._put("}\n")
            self._closed = True
        self._flush()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
