"""A plain payment gets an invoice when its request asks for one (``"invoice": true``): numbered in the seller's
series that subscriptions use (gap-free across both), PDF in S3 with its VAT line, exactly once even when the
worker dies after the PDF is stored and before the job's next checkpoint."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from engine.db.ledger import verify
from engine.db.tables_subscriptions import invoice_counters
from engine.ingest.app import create_app
from engine.invoices import store
from engine.invoices.store import get_pdf
from engine.jobs.job import Job
from engine.jobs.notify import NotifyStage
from engine.jobs.pipeline import StageResult
from tests.fixtures.pdf import pdf_text
from tests.integration.subscriptions.conftest import World
from tests.integration.subscriptions.test_renewals import assert_gap_free


class WorkerDied(BaseException):
    """Stands for a SIGKILL: nothing after it runs, nothing of the worker's open transaction commits."""


def pay(world: World, **fields: Any) -> dict[str, Any]:
    customer = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "anna@example.ie", "country": "IE"}
    body = {"customer": customer, "amount": 2500, "currency": "eur", "payment_method": "pm_card_visa", **fields}
    return world.post("/v1/payments", body)


def payment_envelopes(world: World) -> list[dict[str, Any]]:
    sqs = world.c.sqs
    url = sqs.get_queue_url(QueueName=f"{world.c.settings.queue_prefix}payments.fifo")["QueueUrl"]
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return found
        for m in messages:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def work_payments(world: World) -> list[Job]:
    return [world.c.run_job("payment", envelope) for envelope in payment_envelopes(world)]


def stored_keys(world: World) -> list[str]:
    seller = world.c.settings.seller.vat_id
    listed = world.c.s3.list_objects_v2(Bucket=store.bucket(world.c.settings), Prefix=f"invoices/{seller}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_a_payment_asking_for_an_invoice_is_numbered_in_the_subscriptions_series(world: World) -> None:
    world.subscribe("basic-monthly")
    [sub_job] = world.work()
    invoiced = pay(world, invoice=True, description="Consulting, March")
    plain = pay(world)
    jobs = {j.id: j for j in work_payments(world)}
    assert {j.status for j in jobs.values()} == {"succeeded"}, [j.error for j in jobs.values()]
    world.subscribe("pro-monthly")
    [sub_job_2] = world.work()

    rows = world.invoices()
    assert [r["job_id"] for r in rows] == [sub_job.id, invoiced["id"], sub_job_2.id]
    assert_gap_free(world)
    [row] = [r for r in rows if r["job_id"] == invoiced["id"]]
    assert row["subscription_id"] is None
    assert (row["net"], row["vat"], row["total"]) == (2500, 575, 3075)
    assert (row["vat_country"], row["vat_rate"], row["vat_scheme"]) == ("IE", "23", "domestic")
    assert row["document"]["lines"] == [{"description": "Consulting, March", "amount": 2500}]
    text = pdf_text(get_pdf(world.c.s3, world.c.settings, row["s3_key"]))
    assert f"Invoice {row['number']}" in text and "VAT 23% (IE, domestic)" in text and "5.75 EUR" in text
    assert "Consulting, March" in text
    view = world.job(invoiced["id"]).view()
    assert view["invoice"] == {"number": row["number"], "s3_key": row["s3_key"]}
    assert view["amounts"]["total"] == 3075
    # Without the flag: no invoice, nothing stored, the job as before.
    assert "invoice" not in world.job(plain["id"]).view()
    assert stored_keys(world) == sorted(r["s3_key"] for r in rows)
    assert verify(world.c.db).ok


def test_the_invoice_flag_is_a_documented_boolean(world: World) -> None:
    bad = world.api.post(
        "/v1/payments",
        json={
            "customer": {"id": "c1", "email": "a@b.ie", "country": "IE"},
            "amount": 100,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "invoice": "yes",
        },
        headers=world.headers(),
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    assert bad.json()["error"]["param"] == "invoice"
    schema = create_app(world.c).openapi()["components"]["schemas"]["PaymentRequest"]
    assert schema["properties"]["invoice"]["type"] == "boolean"
    assert schema["properties"]["invoice"]["default"] is False


def test_a_worker_dying_after_the_pdf_is_stored_issues_one_invoice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = pay(world, invoice=True)
    [envelope] = payment_envelopes(world)
    original = NotifyStage.run
    died: list[bool] = []

    def dies_once(self: NotifyStage, job: Job) -> StageResult:
        # The stage after ``invoice``: the PDF is in S3, the invoice stage's output is not checkpointed yet.
        if not died:
            died.append(True)
            raise WorkerDied
        return original(self, job)

    monkeypatch.setattr(NotifyStage, "run", dies_once)
    with pytest.raises(WorkerDied):
        world.c.run_job("payment", envelope)
    mid = world.job(accepted["id"])
    assert mid.status == "processing" and mid.stage == "ledger"  # the number was committed with the capture
    [first] = [r for r in world.invoices() if r["job_id"] == accepted["id"]]
    assert stored_keys(world) == [first["s3_key"]]

    done = world.c.run_job("payment", envelope)  # the redelivery
    assert done.status == "succeeded"
    rows = world.invoices()
    assert [(r["job_id"], r["number"]) for r in rows] == [(accepted["id"], first["number"])]
    assert stored_keys(world) == [first["s3_key"]]
    with world.c.db.connect() as conn:
        counter = conn.execute(
            sa.select(invoice_counters.c.last_number).where(invoice_counters.c.seller == first["seller"])
        ).scalar_one()
    assert counter == 1
    assert world.job(accepted["id"]).view()["invoice"] == {"number": first["number"], "s3_key": first["s3_key"]}
    assert len([pi for pi in world.intents({accepted["id"]}) if pi["status"] == "succeeded"]) == 1
    assert verify(world.c.db).ok
