"""``payments token``: mint a development bearer token."""

from __future__ import annotations

import click

from cli.output import EXIT_USAGE, fail


@click.command()
@click.option(
    "--role",
    "role",
    required=True,
    help="payment_admin|payment_operator|payment_viewer|payment_support (or admin, operator, viewer, support).",
)
@click.option("--sub", default="dev", show_default=True, help="The token's subject (idempotency keys are per subject).")
@click.option("--ttl", type=int, default=86400, show_default=True, help="Lifetime in seconds.")
def token(role: str, sub: str, ttl: int) -> None:
    """Print a signed HS256 token (alone on the last line) for the ingest API."""
    from config.settings import get_settings
    from engine.adapters.auth import mint

    try:
        value = mint(get_settings(), role, sub=sub, ttl_seconds=ttl)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(value)
