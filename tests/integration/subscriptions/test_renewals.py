"""Renewals black-box with simulated time: twelve months billed exactly once each under two concurrent schedulers,
invoices gap-free in S3 with the right VAT, the ledger balanced; and the CLI's ``scheduler --once --now``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from engine.db.ledger import balances, verify
from engine.db.tables import outbox
from engine.db.tables_subscriptions import subscription_renewals
from engine.invoices.store import get_pdf
from pipelines.subscription.billing import add_intervals
from tests.fixtures.pdf import pdf_text
from tests.integration.subscriptions.conftest import World

ROOT = Path(__file__).resolve().parents[3]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_gap_free(world: World) -> None:
    by_year: dict[int, list[int]] = {}
    for row in world.invoices():
        by_year.setdefault(row["year"], []).append(row["sequence"])
        assert row["number"] == f"{row['year']}-{row['sequence']:06d}"
    for year, numbers in by_year.items():
        assert numbers == list(range(1, len(numbers) + 1)), (year, numbers)


def test_a_year_of_monthly_renewals_bills_each_period_once(world: World) -> None:
    accepted = world.subscribe("basic-monthly")
    sub_id = accepted["subscription"]["id"]
    assert accepted["kind"] == "subscription" and accepted["subscription"]["status"] == "incomplete"
    assert world.get(sub_id)["status"] == "incomplete"  # known before any worker ran
    [first] = world.work()
    assert first.status == "succeeded", first.error
    sub = world.get(sub_id)
    assert sub["status"] == "active" and sub["object"] == "subscription"
    anchor = parse(sub["current_period_start"])
    assert parse(sub["current_period_end"]) == add_intervals(anchor, "month", 1)

    # Mid-period nothing is due.
    assert all(r.startswith("0 renewal") for r in world.schedulers(anchor + timedelta(days=10)))
    assert world.receive() == []

    job_ids = {first.id}
    for month in range(1, 13):
        now = add_intervals(anchor, "month", month) + timedelta(hours=1)
        reports = world.schedulers(now, count=2)
        assert sorted(r.split()[0] for r in reports) == ["0", "1"], reports
        assert world.schedulers(now, count=1)[0].startswith("0 renewal")  # a restarted scheduler
        jobs = world.work()
        assert [j.status for j in jobs] == ["succeeded"], [j.error for j in jobs]
        job_ids.add(jobs[0].id)
        assert world.schedulers(now, count=1)[0].startswith("0 renewal")  # paid: not due again
        sub = world.get(sub_id)
        assert sub["status"] == "active"
        assert parse(sub["current_period_start"]) == add_intervals(anchor, "month", month)
        assert parse(sub["current_period_end"]) == add_intervals(anchor, "month", month + 1)
        view = world.job(jobs[0].id).view()
        assert view["subscription"]["current_period_start"] == sub["current_period_start"]
        assert view["amounts"] == {"net": 900, "vat": 207, "total": 1107, "currency": "eur"}

    with world.c.db.connect() as conn:
        periods = conn.execute(
            sa.select(subscription_renewals.c.period_start).where(subscription_renewals.c.subscription_id == sub_id)
        ).all()
    assert len(periods) == 12 and len(set(periods)) == 12

    intents = world.intents(job_ids)
    assert len(intents) == 13 and {pi["status"] for pi in intents} == {"succeeded"}
    assert {pi["amount"] for pi in intents} == {1107}

    rows = world.invoices()
    assert len(rows) == 13 and {r["job_id"] for r in rows} == job_ids
    assert_gap_free(world)
    for row in rows:
        assert (row["net"], row["vat"], row["total"]) == (900, 207, 1107)
        assert (row["vat_country"], row["vat_rate"], row["vat_scheme"]) == ("IE", "23", "domestic")
        pdf = get_pdf(world.c.s3, world.c.settings, row["s3_key"])
        assert pdf.startswith(b"%PDF") and f"Invoice {row['number']}" in pdf_text(pdf)
        assert world.job(row["job_id"]).view()["invoice"] == {"number": row["number"], "s3_key": row["s3_key"]}
    # Thirteen monthly invoices always span two calendar years; each year's numbers start at 000001.
    assert len({r["year"] for r in rows}) == 2

    report = verify(world.c.db)
    assert report.ok, report
    receivable = balances(world.c.db, f"receivable:{world.job(first.id).customer_id}")
    assert receivable and all(b["balance"] == 0 for b in receivable)
    with world.c.db.connect() as conn:
        events = conn.execute(
            sa.select(outbox.c.event_type).where(
                outbox.c.job_id.in_(job_ids), outbox.c.event_type.like("subscription.%")
            )
        ).scalars()
        assert sorted(events) == ["subscription.created"] + ["subscription.renewed"] * 12


def test_reverse_charge_invoice_says_so(world: World) -> None:
    customer = {"id": "cus_rc_" + os.urandom(4).hex(), "email": "ap@firma.de", "country": "DE", "type": "business"}
    accepted = world.post(
        "/v1/subscriptions",
        {"customer": {**customer, "vat_id": "DE136695976"}, "plan": "pro-yearly", "payment_method": "pm_card_visa"},
    )
    [job] = world.work()
    assert job.status == "succeeded", job.error
    [row] = [r for r in world.invoices() if r["job_id"] == accepted["id"]]
    assert (row["net"], row["vat"], row["total"], row["vat_scheme"]) == (29000, 0, 29000, "reverse_charge")
    text = pdf_text(get_pdf(world.c.s3, world.c.settings, row["s3_key"]))
    assert "Reverse charge" in text and "DE136695976" in text
    assert [pi["amount"] for pi in world.intents({job.id})] == [29000]
    sub = world.get(accepted["subscription"]["id"])
    assert parse(sub["current_period_end"]) == add_intervals(parse(sub["current_period_start"]), "year", 1)


def test_cli_schedulers_at_once_enqueue_one_renewal(world: World) -> None:
    accepted = world.subscribe("pro-monthly")
    [first] = world.work()
    assert first.status == "succeeded"
    sub = world.get(accepted["subscription"]["id"])
    now = parse(sub["current_period_end"]) + timedelta(minutes=5)
    s = world.c.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env.update(
        {
            "PAYMENTS_DATA_DIR": str(s.data_dir),
            "PAYMENTS_DATABASE_URL": s.database.url.get_secret_value() if s.database.url else "",
            "PAYMENTS_SQS_ENDPOINT_URL": s.sqs.endpoint_url or "",
            "PAYMENTS_S3_ENDPOINT_URL": s.s3.endpoint_url or "",
            "PAYMENTS_REDIS_URL": s.redis.url.get_secret_value() if s.redis.url else "",
            "PAYMENTS_REDIS_PREFIX": s.redis.prefix or "",
            "PAYMENTS_QUEUE_PREFIX": s.queue_prefix,
            "PAYMENTS_SELLER_VAT_ID": s.seller.vat_id or "",
        }
    )
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
    cmd = [sys.executable, "-m", "cli.main", "scheduler", "--once", "--now", stamp, "--json"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in "ab"]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outputs]
    reports = [json.loads(out)["subscription-renewals"] for out, _ in outputs]
    assert sorted(r.split()[0] for r in reports) == ["0", "1"], reports
    jobs = world.work()
    assert [j.status for j in jobs] == ["succeeded"]
    assert world.get(sub["id"])["current_period_start"] == sub["current_period_end"]
