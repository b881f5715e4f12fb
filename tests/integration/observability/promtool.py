"""promtool and the engine's metric catalogue, shared by the observability tests (integration and e2e).

promtool comes with Debian's ``prometheus`` package (``.ci/run`` installs it).  A test that needs it is skipped
when it is missing and fails when ``CI`` is set (:func:`tests.fixtures.services.need`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from tests.fixtures.services import need

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"

#: The families the issue names; every one must be on a scrape of a stack that has processed payments.
NAMED_FAMILIES = (
    "payments_jobs_total",
    "payments_stage_duration_seconds",
    "payments_http_request_duration_seconds",
    "payments_queue_messages",
    "payments_stripe_requests_total",
    "payments_stripe_request_duration_seconds",
    "payments_circuit_open",
    "payments_amount_minor_units_total",
    "payments_jobs_stuck",
)


def promtool() -> str:
    """The promtool binary; skips the test (fails it in CI) when there is none."""
    path = shutil.which("promtool")
    need(path is not None, "promtool is not on PATH (Debian: apt-get install prometheus)")
    assert path is not None
    return path


def run_promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd or ROOT
    )


def assert_promtool_clean_metrics(exposition: str, where: str) -> None:
    """``promtool check metrics`` on a scrape: exit 0 and nothing reported."""
    result = run_promtool("check", "metrics", stdin=exposition)
    problems = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not problems, f"promtool check metrics on {where}:\n{problems}"


def engine_families() -> dict[str, str]:
    """Every family declared in :mod:`engine.runtime.metrics`: exposed name (counters with ``_total``) → type."""
    from engine.runtime import metrics

    families: dict[str, str] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name, kind = value._name, value._type
            families[f"{name}_total" if kind == "counter" else name] = kind
    return families


def exposed_sample_names() -> set[str]:
    """Every sample name the engine's families can put on a scrape (``_bucket``/``_count``/``_sum`` included)."""
    names: set[str] = set()
    for family, kind in engine_families().items():
        if kind == "histogram":
            names |= {f"{family}_bucket", f"{family}_count", f"{family}_sum"}
        else:
            names.add(family)
    return names
