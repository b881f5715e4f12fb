"""Reading and writing the ECB's own rate files (engine.domain.ecb_files)."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from engine.domain.ecb_files import EcbFileError, PublishedRate, parse, render_daily_xml, render_hist_csv

DATA = Path(__file__).resolve().parents[2] / "data" / "ecb"
HIST = (DATA / "eurofxref-hist-2024.csv").read_bytes()
DAILY = (DATA / "eurofxref-daily-2024-06-28.xml").read_bytes()


def by_key(rates: list[PublishedRate]) -> dict[tuple[date, str], Decimal]:
    return {(r.day, r.currency): Decimal(r.rate) for r in rates}


def test_historical_csv_with_its_trailing_comma_and_na_values() -> None:
    rates = parse(HIST, "eurofxref-hist.csv")
    days = {r.day for r in rates}
    assert len(days) == 8
    # 41 currency columns, of which 11 are N/A in 2024 (CYP EEK LTL LVL MTL ROL SIT SKK HRK RUB TRL): 30 a day.
    assert len(rates) == 8 * 30
    table = by_key(rates)
    assert table[(date(2024, 7, 1), "sek")] == Decimal("11.3675")
    assert table[(date(2024, 7, 1), "huf")] == Decimal("394.25")
    assert table[(date(2024, 4, 2), "pln")] == Decimal("4.2938")
    assert not any(r.currency in {"cyp", "hrk", "rub"} for r in rates)
    assert all(r.currency == r.currency.lower() for r in rates)


def test_daily_xml_in_its_gesmes_envelope() -> None:
    rates = parse(DAILY, "eurofxref-daily.xml")
    assert {r.day for r in rates} == {date(2024, 6, 28)}
    assert len(rates) == 30
    assert [r.rate for r in rates if r.currency == "huf"] == ["395.10"]  # spelt as published


def test_the_xml_and_the_csv_of_one_day_agree() -> None:
    csv_day = {k: v for k, v in by_key(parse(HIST)).items() if k[0] == date(2024, 6, 28)}
    assert csv_day == by_key(parse(DAILY))


def test_zipped_historical_file() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-hist.csv", HIST)
    assert parse(buffer.getvalue(), "eurofxref-hist.zip") == parse(HIST)


def test_daily_csv_with_spelt_out_date_and_spaces() -> None:
    text = "Date, USD, JPY, SEK, \n28 June 2024, 1.0705, 171.94, 11.3595, \n"
    assert parse(text.encode()) == [
        PublishedRate(date(2024, 6, 28), "usd", "1.0705"),
        PublishedRate(date(2024, 6, 28), "jpy", "171.94"),
        PublishedRate(date(2024, 6, 28), "sek", "11.3595"),
    ]


def test_a_byte_order_mark_and_crlf_lines_are_accepted() -> None:
    text = "\ufeffDate,USD,SEK,\r\n2024-07-01,1.0745,11.3675,\r\n"
    assert by_key(parse(text.encode())) == {
        (date(2024, 7, 1), "usd"): Decimal("1.0745"),
        (date(2024, 7, 1), "sek"): Decimal("11.3675"),
    }


def test_rendered_files_read_back_the_same() -> None:
    days = {
        date(2024, 7, 1): {"USD": "1.0745", "SEK": "11.3675", "HUF": "394.25"},
        date(2024, 6, 28): {"USD": "1.0705", "SEK": "11.3595", "HUF": "395.10"},
    }
    expected = {(d, c.lower()): Decimal(v) for d, rates in days.items() for c, v in rates.items()}
    assert by_key(parse(render_daily_xml(days))) == expected
    csv_bytes = render_hist_csv(days, ["USD", "CYP", "SEK", "HUF"])
    assert csv_bytes.splitlines()[0] == b"Date,USD,CYP,SEK,HUF,"
    assert csv_bytes.splitlines()[1] == b"2024-07-01,1.0745,N/A,11.3675,394.25,"
    assert by_key(parse(csv_bytes)) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"hello, world", "neither an ECB CSV"),
        (b"\xff\xfe\x00D", "not UTF-8"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,\n", "line 2: 3 values for 4 columns .*ends with a comma"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,11.3675\n", "line 2: 3 values for 4 columns"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,,\n", "line 2, SEK"),
        (b"Date, USD, SEK\n01 July 2024, 1.0745\n", "line 2: 2 values for 3 columns"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,11.3675,9,\n", "line 2: 5 values for 4"),
        (b"Date,USD,SEK,\n2024-13-01,1.0745,11.3675,\n", "line 2: '2024-13-01' is not a date"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,11,3675,\n", "line 2"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,-11.3675,\n", "line 2, SEK"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,1e1,\n", "line 2, SEK"),
        (b"Date,USD,USD,\n2024-07-01,1.0745,1.0746,\n", "USD is listed twice"),
        (b"Date,US,SEK,\n", "'US' is not a currency code"),
        (b"Date,\n", "no currency columns"),
        (b"Date,USD,\n2024-07-01,1.0745,\n2024-07-01,1.0746,\n", "USD on 2024-07-01 is given twice"),
        (b"<html><body>Not found</body></html>", "not the ECB's gesmes:Envelope"),
        (b"<?xml version='1.0'?><gesmes:Envelope xmlns:gesmes='x'", "not well-formed"),
    ],
)
def test_malformed_files_are_refused_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(EcbFileError, match=message):
        parse(data)


def _envelope(inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
        f'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">{inner}</gesmes:Envelope>'
    ).encode()


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        ("", "holds 0"),
        ("<Cube><Cube time='2024-06-28'><Cube currency='SEK'/></Cube></Cube>", "expected <Cube currency"),
        ("<Cube><Cube time='2024-06-31'><Cube currency='SEK' rate='1'/></Cube></Cube>", "not a date"),
        ("<Cube><Cube><Cube currency='SEK' rate='1'/></Cube></Cube>", "expected <Cube time="),
        ("<Cube><Cube time='2024-06-28'><Cube currency='SEK' rate='abc'/></Cube></Cube>", "SEK"),
        ("<Cube><Cube time='2024-06-28'><Cube currency='S1K' rate='1.5'/></Cube></Cube>", "not a currency"),
    ],
)
def test_malformed_xml_is_refused(inner: str, message: str) -> None:
    with pytest.raises(EcbFileError, match=message):
        parse(_envelope(inner))


def test_xml_with_entities_is_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<gesmes:Envelope xmlns:gesmes='http://www.gesmes.org/xml/2002-08-01'>&lol2;</gesmes:Envelope>"
    )
    with pytest.raises(EcbFileError, match="refused XML"):
        parse(bomb)


def test_a_zip_must_hold_exactly_one_file() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", HIST)
        archive.writestr("b.csv", HIST)
    with pytest.raises(EcbFileError, match="holds 2"):
        parse(buffer.getvalue())
    with pytest.raises(EcbFileError, match="not a readable zip"):
        parse(b"PK\x03\x04garbage")
