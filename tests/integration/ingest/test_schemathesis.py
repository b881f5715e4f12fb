"""schemathesis against the live ingest: every operation of /openapi.json, all its checks, its stateful phase
(createPayment → getJob through the document's links) — 0 failures (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.ingest.conftest import LiveIngest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Bounded and deterministic: a few examples per operation, one seed.
MAX_EXAMPLES = 25
SEED = 16
ST = Path(sys.executable).with_name("st")
HERE = Path(__file__).parent


@pytest.mark.timeout(480)  # ~1 min alone; longer while the rest of the suite shares the 2 cores
def test_schemathesis_finds_no_failure(live_ingest: LiveIngest, tmp_path: Path) -> None:
    argv = [
        str(ST), "--config-file", str(HERE / "schemathesis.toml"), "run", f"{live_ingest.url}/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "1",
        "--no-shrink",
        "--request-timeout", "30",
        "--report", "junit",
        "--report-dir", str(tmp_path),
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HERE / "schemathesis_hooks.py"),
        "PAYMENTS_TEST_BEARER": live_ingest.token("admin"),
    }
    run = subprocess.run(argv, capture_output=True, text=True, timeout=420, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    # Every phase ran (none skipped for want of data or links), the stateful one through the document's links.
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in run.stdout, run.stdout[-6000:]
