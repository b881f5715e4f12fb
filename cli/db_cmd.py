"""``payments db``: database migrations."""

from __future__ import annotations

import click

from cli.output import fail


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations to the configured (or running embedded) database."""
    from engine.db.migrate import current_revision
    from engine.db.migrate import upgrade as run_upgrade
    from engine.runtime.endpoints import NothingRunningError, resolve_endpoints

    try:
        url = resolve_endpoints().require("database").database_url
    except NothingRunningError as exc:
        fail(str(exc))
    assert url is not None
    run_upgrade(url, revision)
    click.echo(f"database at revision {current_revision(url)}")


@db.command()
def current() -> None:
    """Print the database's revision and the newest one this code ships."""
    from engine.db.migrate import current_revision, head_revision
    from engine.runtime.endpoints import NothingRunningError, resolve_endpoints

    try:
        url = resolve_endpoints().require("database").database_url
    except NothingRunningError as exc:
        fail(str(exc))
    assert url is not None
    click.echo(f"current {current_revision(url)}  head {head_revision()}")
