"""GDPR erasure: a customer's e-mail leaves jobs, notifications and saved answers; the ledger and the chain stay."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.audit.erase import pseudonym
from engine.db.tables import idempotency_keys, jobs, ledger_entries, outbox
from engine.ingest.app import create_app
from engine.runtime.container import Container
from tests.integration.audit.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("cli_env")]


def _pay(api: TestClient, c: Container, customer: str, merchant: str = "default") -> str:
    headers = {
        "Authorization": f"Bearer {mint(c.settings, 'operator', sub='m-1', merchant=merchant)}",
        "Idempotency-Key": uuid.uuid4().hex,
    }
    body = {
        "customer": {"id": customer, "email": "anna.schmidt@example.de", "country": "DE"},
        "amount": 2500,
        "currency": "eur",
        "payment_method": "pm_card_visa",
    }
    answer = api.post("/v1/payments", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _run_all(c: Container) -> None:
    url = c.sqs.get_queue_url(QueueName=c.settings.queue_prefix + "payments.fifo")["QueueUrl"]
    for m in c.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        c.run_job("payment", json.loads(m["Body"]))
        c.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _text_of(conn: sa.Connection, job_id: str) -> str:
    row: Any = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().one()
    events = conn.execute(sa.select(outbox.c.payload).where(outbox.c.job_id == job_id)).scalars().all()
    answers = (
        conn.execute(sa.select(idempotency_keys.c.response_body).where(idempotency_keys.c.job_id == job_id))
        .scalars()
        .all()
    )
    return json.dumps([dict(row), events, answers], default=str)


def test_erase_pseudonymises_the_customer_and_records_it(audit_container: Container) -> None:
    c = audit_container
    api = TestClient(create_app(c))
    mine = _pay(api, c, "cus_erase_me")
    other = _pay(api, c, "cus_keep_me")
    _run_all(c)
    with c.db.connect() as conn:
        assert "anna.schmidt@example.de" in _text_of(conn, mine)
        ledger_before = conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)).scalar_one()
    assert ledger_before > 0

    code, out, err = run_cli("customers", "erase", "cus_erase_me", "--json")
    assert code == 0, out + err
    done = json.loads(out)
    assert done["jobs"] == 1  # the job view the notifications carry has the customer id only

    with c.db.connect() as conn:
        text = _text_of(conn, mine)
        assert "anna.schmidt@example.de" not in text and pseudonym("cus_erase_me") in text
        assert "anna.schmidt@example.de" in _text_of(conn, other)  # only that customer
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_entries)).scalar_one() == ledger_before
    assert run_cli("ledger", "verify")[0] == 0
    code, out, err = run_cli("audit", "verify", "--no-s3")
    assert code == 0, out + err
    with c.db.connect() as conn:
        erased = conn.execute(sa.text("SELECT body FROM audit_records WHERE action = 'customer.erase'")).scalar_one()
    record = json.loads(erased)
    assert record["detail"]["customer"] == "cus_erase_me" and record["actor"].startswith("cli:")
    # A second erasure changes nothing more (and is recorded too).
    again = json.loads(run_cli("customers", "erase", "cus_erase_me", "--json")[1])
    assert again["jobs"] == 0 and again["notifications"] == 0


def test_erase_reaches_only_the_named_merchants_customer(audit_container: Container) -> None:
    # Customer ids are per merchant: the same id under another merchant is another person.
    c = audit_container
    api = TestClient(create_app(c))
    theirs = _pay(api, c, "cus_shared", merchant="acct_other")
    ours = _pay(api, c, "cus_shared")
    _run_all(c)
    code, out, err = run_cli("customers", "erase", "cus_shared", "--merchant", "acct_other", "--json")
    assert code == 0, out + err
    assert json.loads(out)["jobs"] == 1
    with c.db.connect() as conn:
        assert pseudonym("cus_shared", "acct_other") in _text_of(conn, theirs)
        assert pseudonym("cus_shared", "acct_other") != pseudonym("cus_shared")
        assert "anna.schmidt@example.de" in _text_of(conn, ours)
        erased = conn.execute(sa.text("SELECT body FROM audit_records WHERE action = 'customer.erase'")).scalar_one()
    assert json.loads(erased)["detail"]["merchant"] == "acct_other"
    assert run_cli("customers", "erase", "cus_shared", "--merchant", "no/such")[0] == 2
