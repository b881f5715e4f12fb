"""``payments config``: print the effective settings, secrets masked."""

from __future__ import annotations

import os
from typing import Any

import click

from cli.output import print_json
from config.settings import ENV_PREFIX, env_name


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (includes every endpoint URL in use).")
def config(as_json: bool) -> None:
    """Print the effective settings with secrets masked: each variable, its value and where it came from."""
    from config.settings import get_settings
    from engine.runtime.endpoints import effective_settings_view, runtime_file

    settings = get_settings()
    view = effective_settings_view(settings)
    if as_json:
        print_json(view)
        return
    endpoints = view.pop("endpoints", {})
    dotenv = _dotenv_names()
    for path, value in _flatten(view):
        name = env_name(path)
        source = "environment" if name in os.environ else ".env" if name in dotenv else "default"
        click.echo(f"{name} = {_show(value)}   ({source})")
    rt = runtime_file(settings)
    click.echo("")
    click.echo(f"endpoints in use (settings first, else the runtime file {rt}{'' if rt.exists() else ', absent'}):")
    for key, value in endpoints.items():
        click.echo(f"  {key} = {_show(value)}")


def _show(value: Any) -> str:
    """A value as an operator reads it: ``(unset)`` rather than ``None``."""
    if value is None or value == "":
        return "(unset)"
    return str(value)


def _dotenv_names() -> set[str]:
    """The variables the ``.env`` file of the current directory sets (what pydantic-settings reads)."""
    try:
        from dotenv import dotenv_values
    except ImportError:  # pragma: no cover - a dependency of pydantic-settings
        return set()
    return {name for name in dotenv_values(".env") if name.startswith(ENV_PREFIX)}


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, path + "."))
        else:
            out.append((path, value))
    return out
