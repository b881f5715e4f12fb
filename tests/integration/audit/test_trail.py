"""The audit trail end to end: payments, a refund, a DLQ replay and a review leave one verifiable chain, shipped to
the Object-Lock bucket; ``payments audit verify`` exits 0, and 1 naming the first bad record once one row (by SQL,
triggers disabled) or one shipped object is changed.  ``payments audit ls`` shows who did what."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.audit.ship import audit_bucket, ship
from engine.db.tables import jobs
from engine.ingest.app import create_app
from engine.runtime.container import Container
from tests.integration.audit.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


def _post(api: TestClient, c: Container, path: str, body: dict[str, Any], sub: str = "merchant-1") -> dict[str, Any]:
    token = mint(c.settings, "operator", sub=sub)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    answer = api.post(path, json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _take(c: Container, queue: str) -> list[dict[str, Any]]:
    url = c.sqs.get_queue_url(QueueName=c.settings.queue_prefix + queue)["QueueUrl"]
    got = c.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    for m in got:
        c.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in got]


def _run_queued(c: Container, queue: str, kind: str) -> None:
    for body in _take(c, queue):
        c.run_job(kind, body)


def _payment(customer: str, amount: int = 1000) -> dict[str, Any]:
    return {
        "customer": {"id": customer, "email": f"{customer}@example.ie", "country": "IE"},
        "amount": amount,
        "currency": "eur",
        "payment_method": "pm_card_visa",
    }


def _a_day_of_operations(c: Container) -> dict[str, str]:
    api = TestClient(create_app(c))
    paid = _post(api, c, "/v1/payments", _payment("cus_audit_1"))["id"]
    _post(api, c, "/v1/payments", _payment("cus_audit_2"))
    _run_queued(c, "payments.fifo", "payment")
    refund = _post(api, c, "/v1/refunds", {"payment": paid, "amount": 400}, sub="support-7")["id"]
    _run_queued(c, "refunds.fifo", "refund")
    # A job whose message died: moved by hand to the DLQ, then replayed with the CLI.
    dead = _post(api, c, "/v1/payments", _payment("cus_audit_3"))["id"]
    url = c.sqs.get_queue_url(QueueName=c.settings.queue_prefix + "payments.fifo")["QueueUrl"]
    message = c.sqs.receive_message(QueueUrl=url, AttributeNames=["All"], WaitTimeSeconds=0)["Messages"][0]
    dlq = c.sqs.get_queue_url(QueueName=c.settings.queue_prefix + "payments-dlq.fifo")["QueueUrl"]
    c.sqs.send_message(
        QueueUrl=dlq,
        MessageBody=message["Body"],
        MessageGroupId=message["Attributes"]["MessageGroupId"],
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    c.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    with c.db.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id == dead).values(status="dead_lettered"))
    code, out, err = run_cli("dlq", "replay", "--id", dead, "--yes", "--json")
    assert code == 0, out + err
    _run_queued(c, "payments.fifo", "payment")
    # A payment parked for review, declined with the CLI.
    parked = _post(api, c, "/v1/payments", _payment("cus_audit_4", amount=900_000))["id"]
    _run_queued(c, "payments.fifo", "payment")
    code, out, err = run_cli("review", "decline", parked, "--by", "risk-officer")
    assert code == 0, out + err
    return {"paid": paid, "refund": refund, "dead": dead, "parked": parked}


def test_a_day_of_operations_verifies_and_ls_shows_who_did_what(audit_container: Container) -> None:
    c = audit_container
    ids = _a_day_of_operations(c)
    assert ship(c.db, c.s3, audit_bucket(c.settings), datetime.now(UTC))
    code, out, err = run_cli("audit", "verify", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] and report["database_records"] == report["s3_records"] == 7

    code, out, _ = run_cli("audit", "ls", "--job", ids["parked"], "--json")
    assert code == 0
    assert [(r["actor"], r["action"]) for r in json.loads(out)] == [
        ("merchant-1", "job.create"),
        ("risk-officer", "review.decline"),
    ]
    code, out, _ = run_cli("audit", "ls", "--job", ids["dead"], "--json")
    actions = [r["action"] for r in json.loads(out)]
    assert actions == ["job.create", "dlq.replay"] and json.loads(out)[1]["actor"].startswith("cli:")
    code, out, _ = run_cli("audit", "ls", "--job", ids["refund"], "--json")
    assert [(r["actor"], r["action"], r["detail"]["kind"]) for r in json.loads(out)] == [
        ("support-7", "job.create", "refund")
    ]
    # No personal data in the chain: the e-mail addresses of the requests are not in any record.
    with c.db.connect() as conn:
        bodies = conn.execute(sa.text("SELECT string_agg(body, ' ') FROM audit_records")).scalar_one()
    assert "@example.ie" not in bodies
    # --since a time after everything: nothing to check, still ok.
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert run_cli("audit", "verify", "--since", later)[0] == 0


def test_an_edited_row_fails_verification_naming_it(audit_container: Container) -> None:
    c = audit_container
    _a_day_of_operations(c)
    with c.db.connect() as conn:
        seq = conn.execute(sa.text("SELECT seq FROM audit_records WHERE action = 'dlq.replay'")).scalar_one()
        last = conn.execute(sa.text("SELECT max(seq) FROM audit_records")).scalar_one()
    assert seq < last
    # As the database owner, triggers disabled for the statement: the change itself goes through ...
    with c.db.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only"))
        conn.execute(
            sa.text("UPDATE audit_records SET body = replace(body, 'replayed', 'skipped') WHERE seq = :seq"),
            {"seq": seq},
        )
        conn.execute(sa.text("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only"))
    # ... and verification names that record, the first bad one.
    code, _, err = run_cli("audit", "verify", "--no-s3")
    assert code == 1
    assert f"database: audit record {seq}: hash does not match" in err, err


def test_an_edited_object_fails_verification_naming_the_record(audit_container: Container) -> None:
    c = audit_container
    _a_day_of_operations(c)
    bucket = audit_bucket(c.settings)
    [shipment] = ship(c.db, c.s3, bucket, datetime.now(UTC))
    lines = c.s3.get_object(Bucket=bucket, Key=shipment.key)["Body"].read().decode().splitlines()
    record = json.loads(lines[2])
    record["body"] = record["body"].replace('"actor":"', '"actor":"someone-else-than-')
    lines[2] = json.dumps(record)
    # A new version of the object (the locked original stays; readers get the newest).
    c.s3.put_object(Bucket=bucket, Key=shipment.key, Body=("\n".join(lines) + "\n").encode())
    code, _, err = run_cli("audit", "verify")
    assert code == 1
    assert f"s3: audit record {shipment.first_seq + 2}:" in err, err
    # The database's own chain is intact.
    assert run_cli("audit", "verify", "--no-s3")[0] == 0
