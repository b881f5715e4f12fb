"""POS batch settlement end to end on real services: upload (HTTP) → S3 → settlements.fifo → pipeline → ledger,
report in the job and in S3.  No mocks: PostgreSQL, Redis and the local S3/SQS endpoint over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.adapters.s3 import settlements_bucket
from engine.db import jobs as job_repo
from engine.db.ledger import verify
from engine.db.tables import jobs, ledger_entries, ledger_transactions
from engine.db.tables_settlement import pos_transactions
from engine.ingest.accept import api_scope
from pipelines.settlement.generate import Expected, generate
from tests.integration.settlement.conftest import csv_body, envelope_for

NOW = datetime.now(UTC).replace(microsecond=0)
TS = (NOW - timedelta(hours=3)).isoformat()


def _upload(api, headers, body: bytes, **kw: Any) -> Any:  # type: ignore[no-untyped-def]
    return api.post("/v1/settlements", content=body, headers=headers(**kw))


def _ledger(container, job_id: str) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    with container.db.connect() as conn:
        rows = conn.execute(
            sa.select(ledger_entries.c.account, ledger_entries.c.currency, ledger_entries.c.amount)
            .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
            .where(ledger_transactions.c.job_id == job_id)
        ).all()
    return sorted((a, c, int(x)) for a, c, x in rows)


def _s3_json(container, uri: str) -> Any:  # type: ignore[no-untyped-def]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(container.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _objects(container) -> list[str]:  # type: ignore[no-untyped-def]
    listing = container.s3.list_objects_v2(Bucket=settlements_bucket(container.settings))
    return [o["Key"] for o in listing.get("Contents", [])]


def test_upload_settle_and_report(api, headers, container, terminal) -> None:  # type: ignore[no-untyped-def]
    t1, t2 = f"{terminal}-1", f"{terminal}-2"
    rows = [
        # 1: a refund *before* its sale (row 2): the sale is in this batch, so the refund is settled.
        (t1, "R1", TS, "refund", 300, "eur", "4242", "", "S1"),
        (t1, "S1", TS, "sale", 1000, "EUR", "4242", "A1", ""),
        (t1, "S2", TS, "sale", 2500, "eur", "1881", "A2", ""),
        (t1, "V2", TS, "void", 2500, "eur", "1881", "", "S2"),
        (t1, "S1", TS, "sale", 1000, "eur", "4242", "A1", ""),  # 5: repeat inside the batch → duplicate
        (t1, "V9", TS, "void", 100, "eur", "4242", "", "NOPE"),  # 6: void of an unknown sale
        (t1, "R2", TS, "refund", 100, "usd", "4242", "", "S1"),  # 7: refund in another currency
        (t2, "S1", TS, "sale", 990, "kwd", "0001", "", ""),  # same transaction id, other terminal: fine
        (t2, "S2", TS, "sale", 991, "kwd", "0001", "", ""),  # 9: three-decimal amount not ending in 0
        (t2, "S3", (NOW + timedelta(days=3)).isoformat(), "sale", 5, "jpy", "0001", "", ""),  # 10: future
        (t2, "S4", TS, "sale", 500, "jpy", "001", "", ""),  # 11: card_last4 not 4 digits
        (t2, "S5", TS, "sale", 500, "jpy", "0001", "", "S1"),  # 12: a sale with an original
        (t2, "S6", TS, "sale", 700, "jpy", "0001", "", ""),
    ]
    answer = _upload(api, headers, csv_body(rows))
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["kind"] == "settlement" and job["status"] == "accepted"
    assert job["batch"]["object"].startswith(f"s3://{settlements_bucket(container.settings)}/batches/")
    # On settlements.fifo, in the uploading client's message group.
    queue = container.sqs.get_queue_url(QueueName=f"{container.settings.queue_prefix}settlements.fifo")["QueueUrl"]
    messages = container.sqs.receive_message(QueueUrl=queue, AttributeNames=["MessageGroupId"], MaxNumberOfMessages=10)
    [message] = messages["Messages"]
    assert json.loads(message["Body"])["job_id"] == job["id"]
    assert message["Attributes"]["MessageGroupId"] == "pos-uploader"

    done = container.run_job("settlement", envelope_for(job))
    assert done.status == "succeeded"
    view = api.get(f"/v1/jobs/{job['id']}", headers=headers(role="viewer")).json()
    assert view["status"] == "succeeded" and view["stage"] == "report"
    assert view["counts"] == {"rows": 13, "accepted": 6, "rejected": 6, "duplicate": 1}
    assert view["rejects"] == [
        {"row": 6, "transaction_id": "V9", "reason": "unknown_original_transaction"},
        {"row": 7, "transaction_id": "R2", "reason": "original_currency_mismatch"},
        {"row": 9, "transaction_id": "S2", "reason": "amount_invalid_precision"},
        {"row": 10, "transaction_id": "S3", "reason": "timestamp_in_future"},
        {"row": 11, "transaction_id": "S4", "reason": "invalid_card_last4"},
        {"row": 12, "transaction_id": "S5", "reason": "unexpected_original_transaction_id"},
    ]
    assert view["totals"] == [
        {"terminal_id": t1, "currency": "eur", "sales": 3500, "refunds": 300, "voids": 2500, "net": 700, "fee": 0},
        {"terminal_id": t2, "currency": "jpy", "sales": 700, "refunds": 0, "voids": 0, "net": 700, "fee": 0},
        {"terminal_id": t2, "currency": "kwd", "sales": 990, "refunds": 0, "voids": 0, "net": 990, "fee": 0},
    ]
    assert _ledger(container, job["id"]) == sorted(
        [
            (f"pos_clearing:{t1}", "eur", 3500),
            ("revenue", "eur", -3500),
            ("revenue", "eur", 2500),
            (f"pos_clearing:{t1}", "eur", -2500),
            ("refunds", "eur", 300),
            (f"pos_clearing:{t1}", "eur", -300),
            (f"pos_clearing:{t2}", "jpy", 700),
            ("revenue", "jpy", -700),
            (f"pos_clearing:{t2}", "kwd", 990),
            ("revenue", "kwd", -990),
        ]
    )
    assert verify(container.db).ok
    report = _s3_json(container, view["report"]["json"])
    assert report["counts"] == view["counts"] and report["totals"] == view["totals"]
    assert [r["row"] for r in report["rejects"]] == [6, 7, 9, 10, 11, 12]
    assert report["duplicates"] == [{"row": 5, "terminal_id": t1, "transaction_id": "S1"}]
    bucket, key = view["report"]["csv"].removeprefix("s3://").split("/", 1)
    csv_lines = container.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
    assert csv_lines[0] == "row,terminal_id,transaction_id,outcome,reason"
    assert csv_lines[1] == f"5,{t1},S1,duplicate,duplicate" and len(csv_lines) == 8
    # A redelivered message changes nothing.
    assert container.run_job("settlement", envelope_for(job)).status == "succeeded"
    assert len(_ledger(container, job["id"])) == 10


def test_duplicates_across_batches_and_identical_reupload(api, headers, container, terminal) -> None:  # type: ignore[no-untyped-def]
    expected = Expected()
    body = b"".join(generate(20_000, seed=11, prefix=terminal, terminals=5, expected=expected))
    first = _upload(api, headers, body).json()
    done = container.run_job("settlement", envelope_for(first))
    assert done.status == "succeeded"
    with container.db.connect() as conn:
        view = job_repo.get(conn, first["id"]).view()
    assert view["counts"] == expected.counts()
    assert [{k: v for k, v in t.items() if k != "fee"} for t in view["totals"]] == expected.totals()
    reasons: dict[str, int] = {}
    for reject in _s3_json(container, view["report"]["json"])["rejects"]:
        reasons[reject["reason"]] = reasons.get(reject["reason"], 0) + 1
    assert reasons == dict(expected.rejected)

    # The same bytes under the same key: the first answer again, and the second upload's object is removed.
    key = "same-key"
    one = _upload(api, headers, body, key=key)
    objects_before = len(_objects(container))
    two = _upload(api, headers, body, key=key)
    assert two.status_code == 202 and two.json()["id"] == one.json()["id"]
    assert len(_objects(container)) == objects_before
    # Other bytes under that key: 422 idempotency_key_reused.
    other = _upload(api, headers, body + f"{terminal}-000,Z1,{TS},sale,5,eur,0000,,\n".encode(), key=key)
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"

    # The identical batch again under a new key: a new job that settles nothing.
    again = container.run_job("settlement", envelope_for(one.json()))
    with container.db.connect() as conn:
        second = job_repo.get(conn, again.id).view()
    assert second["status"] == "succeeded"
    assert second["counts"] == {
        "rows": expected.rows,
        "accepted": 0,
        "rejected": sum(expected.rejected.values()),
        "duplicate": expected.rows - sum(expected.rejected.values()),
    }
    assert second["totals"] == [] and _ledger(container, again.id) == []
    assert verify(container.db).ok


def test_refund_of_a_sale_settled_in_an_earlier_batch(api, headers, container, terminal) -> None:  # type: ignore[no-untyped-def]
    first = _upload(api, headers, csv_body([(terminal, "S1", TS, "sale", 5000, "eur", "4242", "A1", "")])).json()
    container.run_job("settlement", envelope_for(first))
    rows = [
        (terminal, "S1", TS, "sale", 5000, "eur", "4242", "A1", ""),  # settled before → duplicate
        (terminal, "R1", TS, "refund", 1200, "eur", "4242", "", "S1"),  # its sale is from the earlier batch
        (terminal, "R2", TS, "refund", 6000, "eur", "4242", "", "S1"),  # more than the sale
        (terminal, "V1", TS, "void", 10, "eur", "4242", "", "R1"),  # original is a refund, not a sale
    ]
    second = _upload(api, headers, csv_body(rows)).json()
    container.run_job("settlement", envelope_for(second))
    with container.db.connect() as conn:
        view = job_repo.get(conn, second["id"]).view()
        settled = conn.execute(
            sa.select(pos_transactions.c.transaction_id, pos_transactions.c.job_id).where(
                pos_transactions.c.terminal_id == terminal
            )
        ).all()
    assert view["counts"] == {"rows": 4, "accepted": 1, "rejected": 2, "duplicate": 1}
    assert [(r["row"], r["reason"]) for r in view["rejects"]] == [
        (3, "exceeds_original_amount"),
        (4, "unknown_original_transaction"),
    ]
    assert sorted(settled) == sorted([("S1", first["id"]), ("R1", second["id"])])
    assert _ledger(container, second["id"]) == sorted(
        [("refunds", "eur", 1200), (f"pos_clearing:{terminal}", "eur", -1200)]
    )


def test_fees_are_booked_per_terminal_and_currency(container, api, headers, terminal, settle) -> None:  # type: ignore[no-untyped-def]
    rows = [(terminal, f"S{i}", TS, "sale", 3333, "eur", "4242", "", "") for i in range(3)]
    rows.append((terminal, "V0", TS, "void", 3333, "eur", "4242", "", "S0"))
    job = _upload(api, headers, csv_body(rows)).json()
    done = settle(job["id"], fee_bps=150)
    assert done.status == "succeeded"
    with container.db.connect() as conn:
        view = job_repo.get(conn, job["id"]).view()
    # 1.5 % of the settled sales (9999 - 3333 = 6666) = 99.99 → 100 (half up).
    assert view["totals"][0]["fee"] == 100
    assert (f"pos_clearing:{terminal}", "eur", -100) in _ledger(container, job["id"])
    assert ("fees", "eur", 100) in _ledger(container, job["id"])
    assert verify(container.db).ok


@pytest.mark.parametrize("number", ["4111 1111 1111 1111", "4111.1111.1111.1111", "4111\u00a01111\u200b1111/1111"])
def test_card_number_refused_before_anything_is_stored(api, headers, container, terminal, number) -> None:  # type: ignore[no-untyped-def]
    before = _objects(container)
    pan = (terminal, number, TS, "sale", 100, "eur", "1111", "", "")
    key = f"pan-{terminal}"
    answer = _upload(api, headers, csv_body([(terminal, "S1", TS, "sale", 100, "eur", "1111", "", ""), pan]), key=key)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "pan_detected" and "4111" not in json.dumps(error) and "Line 3" in error["message"]
    assert _objects(container) == before
    with container.db.connect() as conn:
        scope = api_scope("pos-uploader", key)
        assert conn.execute(sa.select(jobs.c.id).where(jobs.c.idempotency_scope == scope)).all() == []


def test_card_number_late_in_a_large_upload_leaves_no_parts_behind(container, terminal) -> None:  # type: ignore[no-untyped-def]
    from pipelines.settlement.upload import BatchSink, PanDetected

    sink = BatchSink(container.s3, settlements_bucket(container.settings), part_size=5 * 1024 * 1024)
    for chunk in generate(200_000, prefix=terminal):  # ~14 MB: two parts go up before the card number
        sink.feed(chunk)
    with pytest.raises(PanDetected):
        sink.feed(f"{terminal}-000,X1,{TS},sale,100,eur,1111,4242424242424242,\n".encode())
    bucket = settlements_bucket(container.settings)
    assert container.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert sink.key not in _objects(container)


def test_upload_checks(api, headers, container) -> None:  # type: ignore[no-untyped-def]
    assert api.post("/v1/settlements", content=b"x").status_code == 401
    assert _upload(api, headers, b"a,b\n", role="viewer").status_code == 403
    no_key = headers()
    del no_key["Idempotency-Key"]
    assert api.post("/v1/settlements", content=b"a\n", headers=no_key).json()["error"]["code"] == (
        "idempotency_key_missing"
    )
    json_body = {**headers(), "Content-Type": "application/json"}
    assert api.post("/v1/settlements", content=b"{}", headers=json_body).status_code == 415
    bad_header = _upload(api, headers, b"terminal,amount\nT1,5\n")
    assert bad_header.status_code == 422 and bad_header.json()["error"]["code"] == "validation_error"
    assert _upload(api, headers, b"").json()["error"]["code"] == "validation_error"
    # A bare CR in the first line made the csv module raise: a 500 (found by schemathesis).
    bare_cr = _upload(api, headers, b"\xc2\x9a\xc2\xb6\ro\x05M")
    assert bare_cr.status_code == 422 and bare_cr.json()["error"]["code"] == "validation_error"
    assert _objects(container) == []


def test_crash_in_the_second_chunk_resumes_without_double_posting(api, headers, container, terminal, settle) -> None:  # type: ignore[no-untyped-def]
    expected = Expected()
    body = b"".join(generate(20_000, seed=5, prefix=terminal, terminals=4, expected=expected))
    job = _upload(api, headers, body).json()

    class Crash(RuntimeError):
        pass

    def crash_at(row: int) -> None:
        if row == 7_500:
            raise Crash

    with pytest.raises(Crash):
        settle(job["id"], chunk_rows=5_000, on_row=crash_at)
    with container.db.connect() as conn:
        stored = job_repo.get(conn, job["id"])
        staged = conn.execute(
            sa.select(sa.func.max(pos_transactions.c.row_no)).where(pos_transactions.c.job_id == job["id"])
        ).scalar()
    progress = stored.stage_results["ingest_progress"]
    assert stored.status == "processing" and stored.stage is None
    assert progress["next_row"] == 5_001 and progress["chunks"] == 1 and staged <= 5_000
    assert _ledger(container, job["id"]) == []

    done = settle(job["id"], chunk_rows=5_000)
    assert done.status == "succeeded"
    with container.db.connect() as conn:
        view = job_repo.get(conn, job["id"]).view()
        n_settled = conn.execute(
            sa.select(sa.func.count()).select_from(pos_transactions).where(pos_transactions.c.job_id == job["id"])
        ).scalar()
    assert view["counts"] == expected.counts() and n_settled == expected.accepted
    assert [{k: v for k, v in t.items() if k != "fee"} for t in view["totals"]] == expected.totals()
    # One ledger transaction per terminal and currency; the clearing accounts hold exactly the net.
    clearing: dict[tuple[str, str], int] = {}
    for account, cur, amount in _ledger(container, job["id"]):
        if account.startswith("pos_clearing:"):
            key = (account.removeprefix("pos_clearing:"), cur)
            clearing[key] = clearing.get(key, 0) + amount
    assert clearing == {(t["terminal_id"], t["currency"]): t["net"] for t in expected.totals()}
    assert verify(container.db).ok


def test_a_batch_without_the_header_fails_and_an_upstream_message_gets_its_job(container) -> None:  # type: ignore[no-untyped-def]
    from engine.broker.envelope import Envelope

    bucket = settlements_bucket(container.settings)
    container.s3.put_object(Bucket=bucket, Key="batches/upstream/bad.csv", Body=b"T1,S1,2026-01-01T00:00:00Z,sale\n")
    envelope = Envelope.new(
        kind="settlement",
        data={"key": "batches/upstream/bad.csv"},
        idempotency_scope="upstream:bad-1",
        group_id="acq-1",
    ).to_arg()
    job = container.run_job("settlement", envelope)
    assert job.status == "failed" and job.error is not None and job.error["code"] == "invalid_header"
    missing = Envelope.new(
        kind="settlement",
        data={"key": "batches/upstream/none.csv"},
        idempotency_scope="upstream:none-1",
        group_id="acq-1",
    ).to_arg()
    assert container.run_job("settlement", missing).error["code"] == "batch_not_found"  # type: ignore[index]


def test_object_store_failure_is_503_and_accepts_nothing(api, headers, container, terminal) -> None:  # type: ignore[no-untyped-def]
    container.s3.delete_bucket(Bucket=settlements_bucket(container.settings))  # empty: this test's private bucket
    key = f"s3-down-{terminal}"
    answer = _upload(api, headers, csv_body([(terminal, "S1", TS, "sale", 100, "eur", "1111", "", "")]), key=key)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json()["error"]["code"] == "unavailable"
    scope = api_scope("pos-uploader", key)
    with container.db.connect() as conn:
        assert conn.execute(sa.select(jobs.c.id).where(jobs.c.idempotency_scope == scope)).all() == []


def test_header_only_batch_succeeds_with_nothing(api, headers, container, settle) -> None:  # type: ignore[no-untyped-def]
    job = _upload(api, headers, csv_body([])).json()
    assert settle(job["id"]).status == "succeeded"
    with container.db.connect() as conn:
        view = job_repo.get(conn, job["id"]).view()
    assert view["counts"] == {"rows": 0, "accepted": 0, "rejected": 0, "duplicate": 0}
    assert view["totals"] == [] and view["rejects"] == [] and _ledger(container, job["id"]) == []


def test_a_late_second_delivery_reaching_post_books_nothing(api, headers, container, settle, terminal) -> None:  # type: ignore[no-untyped-def]
    from pipelines.settlement.stages import PostStage

    rows = [
        (terminal, "S1", TS, "sale", 900, "eur", "4242", "", ""),
        (terminal, "V1", TS, "void", 50, "eur", "4242", "", "NOSALE"),  # deleted again at post
    ]
    job = _upload(api, headers, csv_body(rows)).json()
    with container.db.connect() as conn:
        stale = job_repo.get(conn, job["id"])  # as a second delivery saw it before the first one ran
    assert settle(job["id"]).status == "succeeded"
    booked = _ledger(container, job["id"])
    again = PostStage(container.db, container.settings).run(stale)
    assert again.public["counts"] == {"rows": 2, "accepted": 1, "rejected": 1, "duplicate": 0}
    assert again.public["totals"][0]["voids"] == 0
    assert _ledger(container, job["id"]) == booked


def test_refunds_and_voids_of_one_sale_add_up_to_at_most_the_sale(api, headers, container, terminal) -> None:  # type: ignore[no-untyped-def]
    """A 10.00 sale with two 10.00 refunds and a 10.00 void in one batch settles the sale and one refund."""
    rows = [
        (terminal, "R1", TS, "refund", 1000, "eur", "4242", "", "S1"),  # before its sale in the file: still fine
        (terminal, "S1", TS, "sale", 1000, "eur", "4242", "A1", ""),
        (terminal, "R2", TS, "refund", 1000, "eur", "4242", "", "S1"),
        (terminal, "V1", TS, "void", 1000, "eur", "4242", "", "S1"),
    ]
    job = _upload(api, headers, csv_body(rows)).json()
    container.run_job("settlement", envelope_for(job))
    with container.db.connect() as conn:
        view = job_repo.get(conn, job["id"]).view()
        settled = conn.execute(
            sa.select(pos_transactions.c.transaction_id).where(pos_transactions.c.terminal_id == terminal)
        ).scalars()
        kept = sorted(settled)
    assert view["counts"] == {"rows": 4, "accepted": 2, "rejected": 2, "duplicate": 0}
    assert [(r["row"], r["transaction_id"], r["reason"]) for r in view["rejects"]] == [
        (3, "R2", "refunds_exceed_original"),
        (4, "V1", "refunds_exceed_original"),
    ]
    assert kept == ["R1", "S1"]
    assert view["totals"] == [
        {"terminal_id": terminal, "currency": "eur", "sales": 1000, "refunds": 1000, "voids": 0, "fee": 0, "net": 0}
    ]
    assert _ledger(container, job["id"]) == sorted(
        [
            (f"pos_clearing:{terminal}", "eur", 1000),
            ("revenue", "eur", -1000),
            ("refunds", "eur", 1000),
            (f"pos_clearing:{terminal}", "eur", -1000),
        ]
    )
    report = _s3_json(container, view["report"]["json"])
    assert [(r["row"], r["reason"]) for r in report["rejects"]] == [
        (3, "refunds_exceed_original"),
        (4, "refunds_exceed_original"),
    ]
    assert verify(container.db).ok


def test_refunds_of_one_sale_are_summed_across_batches(api, headers, container, terminal) -> None:  # type: ignore[no-untyped-def]
    """What earlier batches refunded counts: a later smaller refund that still fits is kept, one that does not is
    rejected."""
    first = _upload(
        api,
        headers,
        csv_body(
            [
                (terminal, "S1", TS, "sale", 1000, "eur", "4242", "A1", ""),
                (terminal, "R1", TS, "refund", 600, "eur", "4242", "", "S1"),
            ]
        ),
    ).json()
    container.run_job("settlement", envelope_for(first))
    rows = [
        (terminal, "R2", TS, "refund", 500, "eur", "4242", "", "S1"),  # 600 + 500 > 1000
        (terminal, "V1", TS, "void", 300, "eur", "4242", "", "S1"),  # 600 + 300 fits
        (terminal, "R3", TS, "refund", 200, "eur", "4242", "", "S1"),  # 900 + 200 > 1000
    ]
    second = _upload(api, headers, csv_body(rows)).json()
    container.run_job("settlement", envelope_for(second))
    with container.db.connect() as conn:
        view = job_repo.get(conn, second["id"]).view()
    assert view["counts"] == {"rows": 3, "accepted": 1, "rejected": 2, "duplicate": 0}
    assert [(r["row"], r["reason"]) for r in view["rejects"]] == [
        (1, "refunds_exceed_original"),
        (3, "refunds_exceed_original"),
    ]
    assert view["totals"][0]["voids"] == 300 and view["totals"][0]["refunds"] == 0
    assert verify(container.db).ok


def test_two_batches_posting_refunds_of_one_sale_at_once_keep_within_the_sale(  # type: ignore[no-untyped-def]
    api, headers, container, terminal, settle
) -> None:
    """Two batches each refund the whole of one sale and post concurrently: the sale's row lock serialises the
    two posts, so exactly one refund is settled, whatever the interleaving."""
    import threading

    from pipelines.settlement import store

    sale = _upload(api, headers, csv_body([(terminal, "S1", TS, "sale", 1000, "eur", "4242", "", "")])).json()
    assert settle(sale["id"]).status == "succeeded"
    jobs_ = [
        _upload(api, headers, csv_body([(terminal, f"R{i}", TS, "refund", 1000, "eur", "4242", "", "S1")])).json()
        for i in range(2)
    ]
    # Hold the first batch's post inside its transaction right after it took the lock, start the second, let go.
    locked, release = threading.Event(), threading.Event()
    real_lock = store.lock_originals

    def slow_lock(conn, job_id):  # type: ignore[no-untyped-def]
        n = real_lock(conn, job_id)
        if job_id == jobs_[0]["id"]:
            locked.set()
            release.wait(10)
        return n

    store.lock_originals = slow_lock  # type: ignore[assignment]
    try:
        results: dict[int, Any] = {}
        first = threading.Thread(target=lambda: results.__setitem__(0, settle(jobs_[0]["id"])))
        first.start()
        assert locked.wait(30)
        second = threading.Thread(target=lambda: results.__setitem__(1, settle(jobs_[1]["id"])))
        second.start()
        second.join(1.0)
        assert second.is_alive(), "the second post must wait for the sale's lock"
        release.set()
        first.join(30)
        second.join(30)
    finally:
        store.lock_originals = real_lock  # type: ignore[assignment]
    assert results[0].status == results[1].status == "succeeded"
    with container.db.connect() as conn:
        views = [job_repo.get(conn, j["id"]).view() for j in jobs_]
        refunds = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(pos_transactions.c.amount), 0)).where(
                pos_transactions.c.terminal_id == terminal, pos_transactions.c.type != "sale"
            )
        ).scalar_one()
    assert [v["counts"]["accepted"] for v in views] == [1, 0]
    assert views[1]["rejects"][0]["reason"] == "refunds_exceed_original"
    assert refunds == 1000
    booked = [x for j in jobs_ for x in _ledger(container, j["id"]) if x[0] == "refunds"]
    assert booked == [("refunds", "eur", 1000)]
    assert verify(container.db).ok


def test_report_csv_cells_never_start_a_formula(api, headers, container, settle, terminal) -> None:  # type: ignore[no-untyped-def]
    # Issue 14 item 11: ids from the uploaded file land in the report; a spreadsheet must not run them.
    evil = ["=1+2", "+cmd|'/C calc'!A0", "-2+3", "@SUM(1)"]
    rows = [(terminal, "S1", TS, "sale", 900, "eur", "4242", "", "")]
    rows += [(terminal, txn, TS, "void", 100, "eur", "4242", "", "NOPE") for txn in evil]
    job = _upload(api, headers, csv_body(rows)).json()
    assert settle(job["id"]).status == "succeeded"
    view = api.get(f"/v1/jobs/{job['id']}", headers=headers(role="viewer")).json()
    bucket, key = view["report"]["csv"].removeprefix("s3://").split("/", 1)
    text = container.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    import csv
    import io

    cells = [row[2] for row in csv.reader(io.StringIO(text))][1:]
    assert cells == ["'" + txn for txn in evil]


@pytest.mark.parametrize(
    "data",
    [{"key": "reports/x.json"}, {"key": "batches/../reports/x.json"}, {"key": "/batches/x.csv"},
     {"key": "batches//x.csv"}, {"key": "batches/a b.csv"}, {"key": "upstream/x.csv"}],
)  # fmt: skip
def test_a_settlement_message_may_only_name_the_batches_prefix(container, data) -> None:  # type: ignore[no-untyped-def]
    # Issue 14 item 12: first sight of an upstream message refuses any other key (poison, nothing read).
    from engine.errors import PoisonError
    from pipelines.settlement.kind import validate

    with pytest.raises(PoisonError):
        validate(data)


def test_a_job_naming_another_bucket_fails_without_reading_it(container) -> None:  # type: ignore[no-untyped-def]
    from engine.broker.envelope import Envelope

    container.s3.create_bucket(
        Bucket=f"{container.settings.queue_prefix}other",
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
    )
    container.s3.put_object(Bucket=f"{container.settings.queue_prefix}other", Key="batches/x.csv", Body=b"x\n")
    envelope = Envelope.new(
        kind="settlement",
        data={"bucket": f"{container.settings.queue_prefix}other", "key": "batches/x.csv"},
        idempotency_scope=f"upstream:other-{container.settings.queue_prefix}",
        group_id="acq-1",
    ).to_arg()
    job = container.run_job("settlement", envelope)
    assert job.status == "failed" and job.error is not None and job.error["code"] == "batch_location_refused"
