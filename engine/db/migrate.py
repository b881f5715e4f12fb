"""Run Alembic migrations programmatically (``payments db upgrade``, ``payments run``, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from engine.db.engine import get_engine, normalise_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the bundled migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Migrate the database at ``url`` to ``revision``.  Safe to run concurrently (Alembic takes a lock)."""
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The database's current revision(s), comma-separated, or ``None`` before the first migration."""
    with get_engine(url).connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None


def head_revision() -> str | None:
    """The newest revision(s) shipped with this code, comma-separated (one once branches are merged)."""
    heads = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_heads()
    return ",".join(sorted(heads)) or None
