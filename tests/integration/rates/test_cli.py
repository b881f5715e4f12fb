"""``payments rates import|ls|convert`` through click against the test database: good files and bad input."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.rates_cmd import rates
from config.settings import get_settings

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "data" / "ecb"


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(rates, list(args), input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("configured")
def test_import_the_historical_csv_then_convert_by_the_oss_rule() -> None:
    code, out, _ = run("import", str(DATA / "eurofxref-hist-2024.csv"))
    assert code == 0, out
    assert "30 currencies, 2024-03-27 to 2024-09-26" in out
    code, out, _ = run("import", str(DATA / "eurofxref-hist-2024.csv"), "--json")
    assert code == 0
    assert json.loads(out) == {
        "inserted": 0,
        "unchanged": 240,
        "replaced": 0,
        "first_day": "2024-03-27",
        "last_day": "2024-09-26",
        "currencies": json.loads(out)["currencies"],
    }
    code, out, _ = run("import", "-", stdin=(DATA / "eurofxref-daily-2024-06-28.xml").read_bytes())
    assert code == 0 and "0 rate(s) stored, 30 already stored" in out

    # Q2 2024 ends on a Sunday: 1,000.00 SEK at Monday's 11.3675 is 87.97 EUR.
    code, out, _ = run("convert", "100000", "SEK", "EUR", "--date", "2024-06-30")
    assert (code, out.strip()) == (0, "1000.00 SEK = 87.97 EUR at SEK 11.3675 (2024-07-01)")
    code, out, _ = run("convert", "100000", "sek", "pln", "--date", "2024-06-30", "--json")
    assert code == 0
    assert json.loads(out)["result"] == 37_834

    code, out, _ = run("ls", "--currency", "HUF", "--from", "2024-06-28", "--to", "2024-07-01", "--json")
    assert code == 0
    assert [(r["date"], r["rate"]) for r in json.loads(out)] == [("2024-07-01", "394.25"), ("2024-06-28", "395.1")]


@pytest.mark.usefixtures("configured")
def test_a_missing_rate_names_currency_and_date() -> None:
    code, _, err = run("convert", "100", "SEK", "EUR", "--date", "1999-01-04")
    assert code == 1
    assert "no ECB reference rate for SEK on 1999-01-04" in err


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"<html>503 Service Unavailable</html>", "not the ECB's gesmes:Envelope"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,\n", "line 2: 3 values for 4 columns"),
        (b"Date,USD,SEK,\n2024-07-01,1.0745,eleven,\n", "line 2, SEK"),
        (b"Date,USD,SEK,\n", "holds no rates"),
        (b"amount,currency\n100,eur\n", "neither an ECB CSV"),
    ],
)
def test_import_of_a_malformed_file_exits_2_and_says_why(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "rates.csv"
    path.write_bytes(content)
    code, out, err = run("import", str(path))
    assert code == 2
    assert message in err
    assert err.startswith("Error: not imported:")
    assert out == ""


@pytest.mark.usefixtures("configured")
def test_import_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    code, _, err = run("import", str(tmp_path / "nope.csv"))
    assert code == 2 and "cannot read" in err and "nope.csv" in err


@pytest.mark.usefixtures("configured")
def test_a_file_contradicting_stored_rates_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    day = date(2150, 1, 1) + timedelta(days=random.randrange(0, 30_000))
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(f"Date,SEK,\n{day},11.5,\n")
    second.write_text(f"Date,SEK,\n{day + timedelta(days=1)},11.7,\n{day},11.6,\n")
    assert run("import", str(first))[0] == 0
    code, _, err = run("import", str(second))
    assert code == 2
    assert f"SEK {day}: stored 11.5, file 11.6" in err and "--replace" in err
    code, out, _ = run("ls", "--currency", "sek", "--from", str(day), "--to", str(day + timedelta(days=1)), "--json")
    assert [r["rate"] for r in json.loads(out)] == ["11.5"]
    code, out, _ = run("import", str(second), "--replace")
    assert code == 0 and "1 replaced" in out


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["convert", "12.50", "SEK", "EUR", "--date", "2024-06-30"], "integer count of minor units"),
        (["convert", "100", "SEKK", "EUR", "--date", "2024-06-30"], "unsupported currency"),
        (["convert", "100", "SEK", "EUR", "--date", "30/06/2024"], "--date '30/06/2024'"),
        (["ls", "--from", "yesterday"], "--from 'yesterday'"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert message in err


def test_without_a_database_the_command_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PAYMENTS_DATABASE_URL", raising=False)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    try:
        code, _, err = run("import", str(DATA / "eurofxref-daily-2024-06-28.xml"))
    finally:
        get_settings.cache_clear()
    assert code == 1 and "database" in err.lower()
