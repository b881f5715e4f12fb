"""Housekeeping the scheduler runs: expired Idempotency-Keys and long-relayed outbox rows are purged, and every task
run leaves metrics (last success, duration, outcome, interval) for the SchedulerTaskStale alert."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from prometheus_client import REGISTRY

from engine.db.tables import idempotency_keys, outbox
from engine.ops.scheduler import ENGINE_TASKS, run_once


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_expired_idempotency_keys_are_purged_and_live_ones_kept(container) -> None:  # type: ignore[no-untyped-def]
    client = f"c-{uuid.uuid4().hex[:8]}"
    with container.db.begin() as conn:
        for key, expires in (
            ("old", sa.func.now() - sa.text("interval '1 hour'")),
            ("live", sa.func.now() + sa.text("interval '1 hour'")),
        ):
            conn.execute(idempotency_keys.insert().values(client=client, key=key, request_hash="h", expires_at=expires))
    [task] = [t for t in ENGINE_TASKS if t.name == "idempotency-purge"]
    report = run_once(container, tasks=[task])
    assert report["idempotency-purge"].endswith("expired idempotency key(s) deleted")
    assert not report["idempotency-purge"].startswith("0 ")
    with container.db.connect() as conn:
        left = conn.execute(sa.select(idempotency_keys.c.key).where(idempotency_keys.c.client == client)).scalars()
        assert list(left) == ["live"]


def test_outbox_rows_relayed_longer_ago_than_the_retention_are_purged_and_the_rest_kept(container) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    days = container.settings.outbox.retention_days
    rows = {
        "old-relayed": sa.func.now() - sa.func.make_interval(0, 0, 0, days + 1),
        "recent-relayed": sa.func.now() - sa.func.make_interval(0, 0, 0, days - 1),
    }
    with container.db.begin() as conn:
        for name, relayed_at in rows.items():
            conn.execute(
                outbox.insert().values(
                    job_id=None,
                    event_type="test.event",
                    event_key=f"{tag}:{name}",
                    payload={},
                    created_at=sa.func.now() - sa.func.make_interval(0, 0, 0, days + 30),
                    relayed_at=relayed_at,
                )
            )
    [task] = [t for t in ENGINE_TASKS if t.name == "outbox-purge"]
    report = run_once(container, tasks=[task])
    assert report["outbox-purge"].endswith("relayed outbox row(s) deleted")
    assert not report["outbox-purge"].startswith("0 ")
    with container.db.connect() as conn:
        left = conn.execute(sa.select(outbox.c.event_key).where(outbox.c.event_key.startswith(f"{tag}:"))).scalars()
        assert sorted(left) == [f"{tag}:recent-relayed"]


def test_every_run_records_outcome_duration_and_last_success(container) -> None:  # type: ignore[no-untyped-def]
    [task] = [t for t in ENGINE_TASKS if t.name == "idempotency-purge"]
    before = _sample("payments_scheduler_runs_total", task=task.name, outcome="ok") or 0.0
    run_once(container, tasks=[task])
    assert _sample("payments_scheduler_runs_total", task=task.name, outcome="ok") == before + 1
    assert (_sample("payments_scheduler_last_success_timestamp_seconds", task=task.name) or 0) > 0
    assert (_sample("payments_scheduler_last_run_duration_seconds", task=task.name) or -1) >= 0
    assert _sample("payments_scheduler_interval_seconds", task=task.name) == task.interval_seconds

    from engine.jobs.kind import Task

    def broken(now: object) -> str:
        raise RuntimeError("down")

    failing = Task("always-fails", 60.0, broken)
    report = run_once(container, tasks=[failing])
    assert report["always-fails"].startswith("failed: RuntimeError")
    assert _sample("payments_scheduler_runs_total", task="always-fails", outcome="failed") == 1
    assert _sample("payments_scheduler_last_success_timestamp_seconds", task="always-fails") is None
