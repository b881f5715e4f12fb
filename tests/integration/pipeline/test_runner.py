"""The pipeline runner resumes after the last recovery point and commits as few times as the rules allow."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from engine.db import jobs as job_repo
from engine.db.engine import get_engine
from engine.db.tables import outbox
from engine.jobs.job import Job, new_job_id
from engine.jobs.pipeline import Pipeline, PipelineRunner, StageResult


@dataclass
class Compute:
    name: str = "score"
    calls: int = 0

    def run(self, job: Job) -> StageResult:
        self.calls += 1
        return StageResult(data={"score": job.request["amount"] // 10}, public={"score": job.request["amount"] // 10})


@dataclass
class Effect:
    name: str = "charge"
    effects: list[str] = field(default_factory=list)

    def run(self, job: Job) -> StageResult:
        # Uses the earlier stage's result, which may come from this run or a checkpoint.
        assert "score" in job.stage_results
        self.effects.append(job.id)
        return StageResult(data={"charge_id": f"ch_{len(self.effects)}"}, checkpoint=True)


@dataclass
class Write:
    name: str = "book"
    fail_times: int = 0

    def run(self, job: Job) -> StageResult:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("database blip")
        key = f"{job.id}:booked"

        def write(conn: sa.Connection) -> None:
            conn.execute(outbox.insert().values(job_id=job.id, event_type="booked", event_key=key, payload={}))

        return StageResult(data={"booked": True}, public={"booked": True}, write=write)


@dataclass
class Decline:
    name: str = "decide"

    def run(self, job: Job) -> StageResult:
        if job.request["amount"] > 1000:
            return StageResult(status="failed", error={"code": "too_big", "message": "no"})
        return StageResult()


def _job(conn: sa.Connection, amount: int) -> Job:
    return job_repo.insert(
        conn,
        Job(
            id=new_job_id(),
            kind="payment",
            status="accepted",
            stage=None,
            idempotency_scope=f"test:{uuid.uuid4()}",
            queue="payments.fifo",
            group_id="cus_1",
            request={"amount": amount},
        ),
    )


@pytest.fixture
def db(database_url: str) -> sa.Engine:
    return get_engine(database_url)


def _count_commits(db: sa.Engine) -> list[int]:
    counter = [0]
    sa.event.listen(db, "commit", lambda conn: counter.__setitem__(0, counter[0] + 1))
    return counter


def test_crash_after_effect_resumes_without_redoing_it(db: sa.Engine) -> None:
    compute, effect, write = Compute(), Effect(), Write(fail_times=1)
    runner = PipelineRunner(db, Pipeline("test", (compute, effect, write)))
    with db.begin() as conn:
        job = _job(conn, 120)
    with pytest.raises(ConnectionError):
        runner.run(job.id)
    with db.connect() as conn:
        mid = job_repo.get(conn, job.id)
    assert (mid.status, mid.stage) == ("processing", "charge")
    assert mid.stage_results == {"score": {"score": 12}, "charge": {"charge_id": "ch_1"}}

    done = runner.run(job.id)
    assert done.status == "succeeded"
    assert effect.effects == [job.id], "the external effect ran once"
    assert compute.calls == 1, "a checkpointed compute stage is not redone"
    with db.connect() as conn:
        final = job_repo.get(conn, job.id)
        events = conn.execute(sa.select(outbox).where(outbox.c.job_id == job.id)).all()
    assert final.view()["booked"] is True and final.view()["score"] == 12
    assert final.stage == "book"
    # The stage's own write and the runner's job.succeeded event, each once, whatever the crash.
    assert sorted(e.event_key for e in events) == [f"{job.id}:booked", f"{job.id}:job.succeeded"]
    announced = next(e for e in events if e.event_type == "job.succeeded")
    assert announced.payload["status"] == "succeeded" and announced.payload["booked"] is True
    # A redelivery of a finished job changes nothing.
    assert runner.run(job.id).status == "succeeded"
    assert effect.effects == [job.id]


def test_compute_stages_ride_on_the_next_checkpoint(db: sa.Engine) -> None:
    runner = PipelineRunner(db, Pipeline("test", (Compute(), Effect(), Write())))
    with db.begin() as conn:
        job = _job(conn, 50)
    commits = _count_commits(db)
    runner.run(job.id)
    # one read (no commit), the effect checkpoint, the final write+checkpoint
    assert commits[0] == 2


def test_business_outcome_ends_the_job(db: sa.Engine) -> None:
    effect = Effect()
    runner = PipelineRunner(db, Pipeline("test", (Compute(), Decline(), effect)))
    with db.begin() as conn:
        job = _job(conn, 5000)
    done = runner.run(job.id)
    assert done.status == "failed" and effect.effects == []
    with db.connect() as conn:
        stored = job_repo.get(conn, job.id)
    assert stored.error == {"code": "too_big", "message": "no"} and stored.stage == "decide"
    with db.connect() as conn:
        events = conn.execute(sa.select(outbox.c.event_type).where(outbox.c.job_id == job.id)).scalars().all()
    assert events == ["job.failed"]


def test_page_is_newest_first_with_a_cursor(db: sa.Engine) -> None:
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    with db.begin() as conn:
        ids = []
        for _ in range(5):
            j = _job(conn, 1)
            conn.execute(sa.text("UPDATE jobs SET customer_id = :c WHERE id = :i"), {"c": customer, "i": j.id})
            ids.append(j.id)
    seen: list[str] = []
    cursor: Any = None
    with db.connect() as conn:
        while True:
            rows, has_more, cursor = job_repo.page(conn, limit=2, cursor=cursor, customer=customer)
            seen += [r.id for r in rows]
            if not has_more:
                break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    with pytest.raises(ValueError):
        job_repo.decode_cursor("garbage!")
