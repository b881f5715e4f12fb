"""One exception root: every exception class the project defines derives from ``engine.errors.PaymentsError``.

The Stripe sandbox (``sandbox/stripe_sim``) is the one exception: its errors stand for Stripe's, not the engine's.
Only modules that define a class are imported (found with :mod:`ast`), so entry points that build an app or bind
actors at import time are never run.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from engine.errors import InvalidInput, NotFoundError, PaymentsError, PoisonError, TransientError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "pipelines", "actors", "cli", "config", "sandbox")
OUTSIDE_THE_TREE = ("sandbox.stripe_sim",)


def _modules_defining_classes() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if name.startswith(OUTSIDE_THE_TREE):
                continue
            if any(isinstance(node, ast.ClassDef) for node in ast.walk(ast.parse(path.read_text()))):
                found.append(name)
    return found


def test_every_project_exception_derives_from_payments_error() -> None:
    exceptions: list[type[BaseException]] = []
    for name in _modules_defining_classes():
        module = importlib.import_module(name)
        exceptions += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if obj.__module__ == name and issubclass(obj, BaseException)
        ]
    assert len(exceptions) > 20  # the scan does see them
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in exceptions if not issubclass(cls, PaymentsError))
    assert not outside, f"exceptions outside the PaymentsError tree: {outside}"


def test_the_taxonomy_sits_under_the_root() -> None:
    from engine.broker.errors import PoisonMessage
    from engine.errors import DependencyDown

    assert issubclass(DependencyDown, TransientError) and issubclass(TransientError, PaymentsError)
    # One poison: a message the broker cannot decode is dead-lettered by the same rule as a poison job.
    assert issubclass(PoisonMessage, PoisonError)
    # Callers that catch the built-in kinds keep working.
    assert issubclass(InvalidInput, ValueError) and issubclass(NotFoundError, LookupError)
