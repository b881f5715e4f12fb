"""One SQLAlchemy engine per database URL and process."""

from __future__ import annotations

import functools

import sqlalchemy as sa


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver whatever spelling the user gave (``postgres://``, ``postgresql://``)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@functools.lru_cache(maxsize=8)
def get_engine(url: str, pool_size: int = 5) -> sa.Engine:
    """A pooled engine for ``url``, made once per process (pre-ping: survives a database restart)."""
    return sa.create_engine(
        normalise_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Errors and logs name the statement, never its parameters (customer data, issue 14 item 4).
        hide_parameters=True,
        future=True,
    )
