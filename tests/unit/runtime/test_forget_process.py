"""A dead process's live gauges leave the multiprocess scrape (issue 16: nothing called mark_process_dead)."""

from __future__ import annotations

from pathlib import Path

from engine.runtime.metrics import forget_process


def test_forget_process_removes_the_dead_pids_live_gauge_files(tmp_path: Path) -> None:
    dead, alive = 4242, 4343
    for pid in (dead, alive):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    forget_process(dead, str(tmp_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["counter_4242.db", "counter_4343.db", "gauge_livesum_4343.db"]  # counters are kept


def test_outside_multiprocess_mode_it_does_nothing(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    forget_process(4242)
