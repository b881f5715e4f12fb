"""The scheduler's ``ecb-rates`` task: off by default, fetches over HTTP or from a file, idempotent, and a bad
answer stores nothing."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.settings import Settings
from engine.db.tables_rates import rates
from engine.ops.scheduler import TASKS, run_once
from engine.runtime.container import Container
from engine.runtime.endpoints import resolve_endpoints

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "data" / "ecb"
TASK = [t for t in TASKS if t.name == "ecb-rates"]
NOW = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)


class _Files(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def container(tmp_path: Path, database_url: str, url: str | None) -> Container:
    settings = Settings(data_dir=tmp_path / "var", database={"url": database_url}, rates={"url": url})
    return Container(settings=settings, endpoints=resolve_endpoints(settings))


def stored_on(c: Container, day: str) -> int:
    with c.db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(rates).where(rates.c.date == date.fromisoformat(day))
            ).scalar_one()
        )


def test_off_without_a_url(tmp_path: Path, database_url: str) -> None:
    assert run_once(container(tmp_path, database_url, None), NOW, TASK) == {
        "ecb-rates": "off (PAYMENTS_RATES_URL is not set)"
    }


def test_fetches_the_daily_xml_over_http_and_again_changes_nothing(
    tmp_path: Path, database_url: str, server: str
) -> None:
    _Files.routes = {"/eurofxref-daily.xml": (200, (DATA / "eurofxref-daily-2024-06-28.xml").read_bytes())}
    c = container(tmp_path, database_url, f"{server}/eurofxref-daily.xml")
    first = run_once(c, NOW, TASK)["ecb-rates"]
    assert "already stored (published 2024-06-28 to 2024-06-28)" in first
    assert (
        run_once(c, NOW, TASK)["ecb-rates"] == "0 new rate(s), 30 already stored (published 2024-06-28 to 2024-06-28)"
    )
    assert stored_on(c, "2024-06-28") == 30


def test_reads_a_file_url(tmp_path: Path, database_url: str) -> None:
    c = container(tmp_path, database_url, (DATA / "eurofxref-hist-2024.csv").as_uri())
    assert "published 2024-03-27 to 2024-09-26" in run_once(c, NOW, TASK)["ecb-rates"]
    assert stored_on(c, "2024-04-02") == 30


@pytest.mark.parametrize(
    ("route", "report"),
    [
        ((503, b"busy"), "failed: FetchError: "),
        ((200, b"<html>maintenance</html>"), "failed: EcbFileError: "),
        ((200, b"Date,SEK,\n2199-12-30,11.5,\n2199-12-31,oops,\n"), "line 3, SEK"),
    ],
)
def test_a_bad_answer_is_reported_and_stores_nothing(
    tmp_path: Path, database_url: str, server: str, route: tuple[int, bytes], report: str
) -> None:
    _Files.routes = {"/daily.xml": route}
    c = container(tmp_path, database_url, f"{server}/daily.xml")
    assert report in run_once(c, NOW, TASK)["ecb-rates"]
    assert stored_on(c, "2199-12-30") == 0


def test_an_unreachable_or_odd_url_is_reported(tmp_path: Path, database_url: str) -> None:
    for url, why in [
        ("http://127.0.0.1:9/daily.xml", "FetchError"),
        ("ftp://example.org/daily.xml", "only https://, http:// and file://"),
        ((tmp_path / "missing.xml").as_uri(), "No such file"),
    ]:
        assert why in run_once(container(tmp_path, database_url, url), NOW, TASK)["ecb-rates"]
