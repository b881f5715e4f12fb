"""The guard of the commands that need the local stack (``payments run``, ``sim``, ``demo``)."""

from __future__ import annotations

from cli.output import EXIT_USAGE, fail


def require_local_stack(command: str) -> None:
    """Return when the ``[local]`` extra is installed; otherwise print which install it takes and exit 2."""
    from sandbox.extra import INSTALL_HINT, missing_distributions

    missing = missing_distributions()
    if missing:
        fail(
            f"`payments {command}` needs the local stack, which this installation leaves out "
            f"(missing: {', '.join(missing)}). Install it with: {INSTALL_HINT}",
            EXIT_USAGE,
        )
