"""The chain in the database: one statement per append, gapless under rollbacks and races, and append-only."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from engine.audit.chain import append, enqueue, head, records, seal
from engine.audit.record import GENESIS, record_hash
from engine.audit.verify import verify_database
from engine.runtime.container import Container

pytestmark = pytest.mark.integration


def test_the_database_chains_records_by_the_documented_rule(audit_container: Container) -> None:
    db = audit_container.db
    with db.begin() as conn:
        first = append(conn, actor="cli:ops", action="dlq.purge", job="job_1", detail={"queue": "payments.fifo"})
        second = append(conn, actor="sub-1", action="job.create", job="job_2")
    assert (first, second) == (1, 2)
    with db.connect() as conn:
        got = list(records(conn))
        assert head(conn) == (2, got[-1].hash)
        job_of_first = conn.execute(sa.text("SELECT job_id, actor, action FROM audit_records WHERE seq = 1")).one()
    assert got[0].prev_hash == GENESIS and got[1].prev_hash == got[0].hash
    assert all(r.hash == record_hash(r.seq, r.prev_hash, r.body) for r in got)
    assert tuple(job_of_first) == ("job_1", "cli:ops", "dlq.purge")


def test_a_rolled_back_append_leaves_no_gap(audit_container: Container) -> None:
    db = audit_container.db
    with pytest.raises(RuntimeError), db.begin() as conn:
        append(conn, actor="a", action="job.create", job="job_gone")
        raise RuntimeError("the change failed after its audit record")
    with db.begin() as conn:
        assert append(conn, actor="a", action="job.create", job="job_kept") == 1
    with db.connect() as conn:
        assert verify_database(conn) == (1, None)


def test_racing_appends_stay_one_gapless_chain(audit_container: Container) -> None:
    db = audit_container.db
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                with db.begin() as conn:
                    append(conn, actor=f"t{n}", action="job.create", job=f"job_{n}_{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.connect() as conn:
        assert verify_database(conn) == (100, None)
        assert head(conn)[0] == 100


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_records SET body = body WHERE seq = 1",
        "DELETE FROM audit_records WHERE seq = 1",
        "TRUNCATE audit_records",
    ],
)
def test_records_refuse_update_delete_truncate(audit_container: Container, statement: str) -> None:
    db = audit_container.db
    with db.begin() as conn:
        append(conn, actor="a", action="job.create", job="job_1")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.begin() as conn:
        conn.execute(sa.text(statement))
    with db.connect() as conn:
        assert verify_database(conn) == (1, None)


def test_queued_records_are_chained_once_by_racing_sealers(audit_container: Container) -> None:
    db = audit_container.db
    with pytest.raises(RuntimeError), db.begin() as conn:
        enqueue(conn, actor="a", action="job.create", job="job_rolled_back")
        raise RuntimeError("the request failed: its record goes with it")
    for i in range(60):
        with db.begin() as conn:
            enqueue(conn, actor="sub", action="job.create", job=f"job_{i}")
    with db.begin() as conn:
        append(conn, actor="cli:ops", action="dlq.purge", job="job_x")  # chained at once, before the queued ones
    sealed: list[int] = []
    threads = [threading.Thread(target=lambda: sealed.append(seal(db, batch=7))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sealed) == 60
    with db.connect() as conn:
        assert verify_database(conn) == (61, None)
        jobs_in_chain = [r.fields()["job"] for r in records(conn)]
        assert conn.execute(sa.text("SELECT count(*) FROM audit_pending")).scalar_one() == 0
    assert jobs_in_chain[0] == "job_x" and sorted(jobs_in_chain[1:]) == sorted(f"job_{i}" for i in range(60))
    assert "job_rolled_back" not in jobs_in_chain


def test_queued_records_refuse_update_and_truncate(audit_container: Container) -> None:
    db = audit_container.db
    with db.begin() as conn:
        enqueue(conn, actor="a", action="job.create", job="job_1")
    for statement in ("UPDATE audit_pending SET body = body", "TRUNCATE audit_pending"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.begin() as conn:
            conn.execute(sa.text(statement))
