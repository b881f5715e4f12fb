"""The Procfile (issue 16): a release phase that migrates and creates the queues; workers sized by their own
variables, not WEB_CONCURRENCY."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _entries() -> dict[str, str]:
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        out[name.strip()] = command.strip()
    return out


def test_release_migrates_and_creates_queues() -> None:
    assert _entries()["release"] == "payments db upgrade && payments queues create"


def test_workers_have_their_own_size_variables() -> None:
    worker = _entries()["worker"]
    assert "WEB_CONCURRENCY" not in worker
    assert "PAYMENTS_WORKER_PROCESSES" in worker and "PAYMENTS_WORKER_THREADS" in worker
