"""``payments config``: print the effective settings, secrets masked."""

from __future__ import annotations

from typing import Any

import click

from cli.output import print_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (includes every endpoint URL in use).")
def config(as_json: bool) -> None:
    """Print the effective settings with secrets masked."""
    from engine.runtime.endpoints import effective_settings_view

    view = effective_settings_view()
    if as_json:
        print_json(view)
        return
    for key, value in _flatten(view):
        click.echo(f"{key} = {value}")


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, path + "."))
        else:
            out.append((path, value))
    return out
