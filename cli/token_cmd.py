"""``payments token``: mint a short-lived bearer token for the local stack."""

from __future__ import annotations

import click

from cli.output import EXIT_USAGE, fail
from engine.adapters.auth import ALIASES, DEFAULT_TTL_SECONDS, ROLES
from engine.domain.merchant import DEFAULT_MERCHANT


@click.command()
@click.option(
    "--role",
    "role",
    required=True,
    type=click.Choice([*ROLES, *ALIASES]),
    help="The token's role (the short names are aliases).",
)
@click.option("--sub", default="dev", show_default=True, help="The token's subject (idempotency keys are per subject).")
@click.option(
    "--merchant",
    default=DEFAULT_MERCHANT,
    show_default=True,
    help="The merchant the token acts for (claim `merchant`): the API shows and changes only its jobs.",
)
@click.option(
    "--ttl",
    type=int,
    default=DEFAULT_TTL_SECONDS,
    show_default=True,
    help="Lifetime in seconds, at most PAYMENTS_JWT_MAX_LIFETIME_SECONDS.",
)
def token(role: str, sub: str, merchant: str, ttl: int) -> None:
    """Print a signed HS256 token for the local stack (alone on the last line).

    Only against the local stack's own secret (under the data directory): with PAYMENTS_JWT_ISSUER or
    PAYMENTS_JWT_SECRET set, tokens come from the deployment's identity provider, and this command exits 2.
    """
    from config.settings import get_settings
    from engine.adapters.auth import local_minting_refusal, mint

    settings = get_settings()
    refusal = local_minting_refusal(settings)
    if refusal:
        fail(refusal, EXIT_USAGE)
    try:
        value = mint(settings, role, sub=sub, ttl_seconds=ttl, merchant=merchant)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(value)
