"""The streaming CSV and JSON writers: correct documents, few large writes, constant buffering."""

from __future__ import annotations

import csv
import io
import json

import pytest

from engine.reports.writers import FLUSH_BYTES, CsvStream, JsonStream


class CountingSink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def test_csv_header_rows_and_empty_cells() -> None:
    sink = CountingSink()
    out = CsvStream(sink, ["a", "b", "c"])
    out.write({"a": 1, "b": None, "c": "x,y", "ignored": 5})
    out.write({"a": -2})
    out.close()
    assert sink.data == b'a,b,c\n1,,"x,y"\n-2,,\n'
    assert out.rows == 2


def test_csv_streams_in_chunks_of_about_the_flush_size() -> None:
    sink = CountingSink()
    out = CsvStream(sink, ["n", "text"])
    rows = 20_000
    out.write_all({"n": i, "text": "é" * 10} for i in range(rows))
    out.close()
    assert len(sink.chunks) > 3
    assert all(len(c) < FLUSH_BYTES * 2 + 1000 for c in sink.chunks)
    parsed = list(csv.DictReader(io.StringIO(sink.data.decode())))
    assert len(parsed) == rows and parsed[-1] == {"n": str(rows - 1), "text": "é" * 10}


def test_json_fields_and_a_streamed_array() -> None:
    sink = CountingSink()
    out = JsonStream(sink)
    out.field("type", "oss_return")
    out.begin_array("lines")
    for i in range(50_000):
        out.item({"i": i, "country": "SE"})
    out.end_array()
    out.fields({"total": 13_386, "notes": ["a", "b"], "when": __import__("datetime").date(2024, 6, 30)})
    out.close()
    doc = json.loads(sink.data)
    assert doc["type"] == "oss_return" and len(doc["lines"]) == 50_000 and doc["lines"][7] == {"i": 7, "country": "SE"}
    assert (doc["total"], doc["notes"], doc["when"]) == (13_386, ["a", "b"], "2024-06-30")
    assert len(sink.chunks) > 5 and out.items == 50_000


def test_json_empty_array_and_misuse() -> None:
    sink = CountingSink()
    out = JsonStream(sink)
    out.begin_array("none")
    with pytest.raises(RuntimeError):
        out.field("x", 1)
    out.end_array()
    with pytest.raises(RuntimeError):
        out.item(1)
    out.close()
    assert json.loads(sink.data) == {"none": []}
    with pytest.raises(RuntimeError):
        out.field("late", 1)


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x")', "+cmd|'/C calc'!A0", "-1+1", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_text_that_would_run_as_a_formula_is_neutralised(cell: str) -> None:
    sink = CountingSink()
    out = CsvStream(sink, ["id", "amount"])
    out.write({"id": cell, "amount": -250})
    out.close()
    body = sink.data.decode().split("\n", 1)[1]
    # The cell begins with the quote (the csv module may wrap it in double quotes); numbers, negative ones
    # included, are written as they are.
    assert body.removeprefix('"').startswith("'" + cell[0]) and body.endswith(",-250\n")
    if "\r" not in cell:
        (row,) = list(csv.reader(io.StringIO(body)))
        assert row == ["'" + cell, "-250"]


def test_neutralise_leaves_other_values_alone() -> None:
    from engine.domain.spreadsheet import neutralise

    for value in ("plain", "a=b", " =x", "", 5, -5, None, 1.5):
        assert neutralise(value) == value
