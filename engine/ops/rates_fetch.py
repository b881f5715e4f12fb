"""The scheduler's ``ecb-rates`` task: fetch the ECB's daily reference rates and store what is new.

Off unless ``PAYMENTS_RATES_URL`` is set (the ECB's own file is
``https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml``; a ``file://`` URL reads a local copy, as the
local stack's fixture).  The ECB publishes once a working day around 16:00 CET; the task runs hourly and is
idempotent (:func:`engine.db.rates.import_rates`), so a missed hour or a second scheduler costs nothing.  Only the
latest day is in the daily file: a day the scheduler did not run is filled in with
``payments rates import eurofxref-hist.csv`` (or ``eurofxref-hist-90d.xml``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import sqlalchemy as sa

from config.settings import Settings
from engine.db.rates import import_rates
from engine.domain.ecb_files import MAX_FILE_BYTES, parse
from engine.errors import TransientError


class FetchError(TransientError):
    """The rates file could not be fetched (network, HTTP status, size); the message says which.  The next
    hour's run tries again."""


def fetch(url: str, timeout: float) -> bytes:
    """The bytes at ``url`` (``https://``, ``http://`` or ``file://``).

    Raises :class:`FetchError` for another scheme, an HTTP status other than 200, a network failure, a missing
    file or a body over the size limit.
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise FetchError(f"{url}: larger than {MAX_FILE_BYTES} bytes")
            return path.read_bytes()
        except OSError as exc:
            raise FetchError(f"{url}: {exc.strerror or exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"{url}: only https://, http:// and file:// URLs are fetched")
    import httpx

    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client, client.stream("GET", url) as answer:
            if answer.status_code != 200:
                raise FetchError(f"{url}: HTTP {answer.status_code}")
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_FILE_BYTES:
                    raise FetchError(f"{url}: larger than {MAX_FILE_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc


def run_task(settings: Settings, db: sa.Engine, now: datetime) -> str:
    """Fetch ``PAYMENTS_RATES_URL`` and store its rates; a one-line report.  Raises :class:`FetchError`,
    :class:`engine.domain.ecb_files.EcbFileError` or :class:`engine.db.rates.RatesConflict` (the scheduler
    reports the failure and tries again next hour)."""
    url = settings.rates.url
    if not url:
        return "off (PAYMENTS_RATES_URL is not set)"
    published = parse(fetch(url, settings.rates.timeout_seconds), url)
    with db.begin() as conn:
        result = import_rates(conn, published, source=url)
    return (
        f"{result.inserted} new rate(s), {result.unchanged} already stored "
        f"(published {result.first_day} to {result.last_day})"
    )
