"""Issue 7, black-box through a real worker: payments whose Stripe calls keep failing with HTTP 500 exhaust their
retry budget and land in the DLQ with reasons; `payments dlq ls` lists them; after recovery `payments dlq replay
--all` completes them with exactly one charge each; poison is purged only after it is archived."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dramatiq
import sqlalchemy as sa

from engine.db.tables import dead_letters
from engine.db.tables_dlq import dlq_archive
from engine.runtime.container import Container
from tests.integration.dlq.conftest import cli_json, depth, intents, job, queue_url, sim, submit, wait_until

FAILING = "pm_card_mastercard"


def test_failing_payments_are_dead_lettered_with_reasons_and_replayed_with_one_charge_each(
    payment_container: Container,
    stripe_sim: Any,
    start_worker: Callable[[], dramatiq.Worker],
    payments_cli: Callable[..., Any],
) -> None:
    c = payment_container
    sim(stripe_sim, fail_payment_methods=[FAILING])
    # Two failing payments only: 5xx from three distinct jobs in a window would open the circuit breaker.
    failing = [submit(c, payment_method=FAILING) for _ in range(2)]
    good = [submit(c) for _ in range(3)]
    start_worker()

    wait_until(lambda: all(job(c, j).status == "succeeded" for j in good))
    wait_until(lambda: all(job(c, j).status == "dead_lettered" for j in failing))
    wait_until(lambda: depth(c, "payments-dlq.fifo") == 2 and depth(c, "payments.fifo") == 0, timeout=20)

    with c.db.connect() as conn:
        mine = dead_letters.c.queue == f"{c.settings.queue_prefix}payments.fifo"
        rows = {r["job_id"]: r for r in conn.execute(sa.select(dead_letters).where(mine)).mappings()}
    assert set(rows) == set(failing)
    for job_id in failing:
        r = rows[job_id]
        assert (r["kind"], r["source"], r["attempts"]) == ("payment", "explicit", 3)  # the engine's count
        assert r["queue"] == f"{c.settings.queue_prefix}payments.fifo" and r["group_id"]
        assert r["stage"] == "charge"  # the stage it died in (its recovery point: none, fraud and VAT redo)
        assert r["error_class"] == "TransientError" and "APIError" in r["error_message"]
        assert "Traceback" in r["traceback"] and r["first_failed_at"] <= r["last_failed_at"]
        assert job(c, job_id).error == {"code": "dead_lettered", "message": f"TransientError: {r['error_message']}"}

    listed = cli_json(payments_cli, "dlq", "ls", "--json")
    assert sorted(x["job_id"] for x in listed) == sorted(failing)
    entry = listed[0]
    assert set(entry) >= {"job_id", "message_id", "queue", "kind", "stage", "attempts", "error"}
    assert set(entry) >= {"first_failed_at", "last_failed_at"}
    assert entry["queue"].endswith("payments.fifo") and entry["kind"] == "payment" and entry["attempts"] == 3
    assert entry["error"]["class"] == "TransientError" and entry["stage"] == "charge"
    assert cli_json(payments_cli, "dlq", "ls", "--error", "no such error", "--json") == []
    assert cli_json(payments_cli, "dlq", "ls", "--queue", "refunds", "--json") == []
    assert len(cli_json(payments_cli, "dlq", "ls", "--queue", "payments-dlq.fifo", "--since", "1h", "--json")) == 2

    shown = cli_json(payments_cli, "dlq", "show", failing[0], "--json")
    assert shown["job"]["id"] == failing[0] and shown["job"]["status"] == "dead_lettered"
    assert shown["replay"]["action"] == "charge" and shown["messages"][0]["body"]
    assert "Traceback" in shown["reasons"][0]["traceback"]

    planned = cli_json(payments_cli, "dlq", "replay", "--all", "--dry-run", "--json")
    assert {p["job_id"]: p["action"] for p in planned} == {j: "charge" for j in failing}
    assert depth(c, "payments-dlq.fifo") == 2  # a dry run moves nothing

    sim(stripe_sim, fail_payment_methods=[])  # the cause is fixed
    replayed = cli_json(payments_cli, "dlq", "replay", "--all", "--rate", "20/s", "--json")
    assert sorted(r["job_id"] for r in replayed) == sorted(failing)
    assert all(r["outcome"] == "replayed" and r["dedup_id"].endswith(":replay:1") for r in replayed)

    wait_until(lambda: all(job(c, j).status == "succeeded" for j in failing))
    for job_id in failing + good:
        assert [pi["status"] for pi in intents(stripe_sim, job_id) if pi["status"] == "succeeded"] == ["succeeded"]
    assert all(job(c, j).enqueue_generation == 1 for j in failing)
    assert depth(c, "payments-dlq.fifo") == 0
    assert cli_json(payments_cli, "dlq", "ls", "--json") == []
    with c.db.connect() as conn:
        mine = dead_letters.c.queue == f"{c.settings.queue_prefix}payments.fifo"
        assert conn.execute(sa.select(sa.func.count()).where(mine, dead_letters.c.replayed_at.is_(None))).scalar() == 0


def test_poison_is_listed_skipped_by_replay_and_purged_after_archiving(
    payment_container: Container, start_worker: Callable[[], dramatiq.Worker], payments_cli: Callable[..., Any]
) -> None:
    c = payment_container
    poison_id = f"job_poison_{c.settings.queue_prefix}"
    body = json.dumps({"version": 1, "kind": "payment", "job_id": poison_id, "data": "not an object"})
    c.sqs.send_message(
        QueueUrl=queue_url(c, "payments.fifo"), MessageBody=body, MessageGroupId="cus_p", MessageDeduplicationId="p1"
    )
    start_worker()
    wait_until(lambda: depth(c, "payments-dlq.fifo") == 1)

    (listed,) = wait_until(lambda: cli_json(payments_cli, "dlq", "ls", "--json"))
    assert listed["error"]["class"] == "PoisonMessage" and listed["job_id"] == poison_id

    skipped = payments_cli("dlq", "replay", "--all", "--json", check=False)
    assert skipped.returncode == 1 and json.loads(skipped.stdout)[0]["outcome"] == "skipped"
    assert depth(c, "payments-dlq.fifo") == 1  # left where it was

    refused = payments_cli("dlq", "purge", "--queue", "payments", check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert payments_cli("dlq", "purge", "--queue", "nope", "--yes", check=False).returncode == 2

    purged = cli_json(
        payments_cli, "dlq", "purge", "--queue", "payments-dlq.fifo", "--error", "poison", "--yes", "--json"
    )
    assert [p["job_id"] for p in purged] == [poison_id]
    assert depth(c, "payments-dlq.fifo") == 0
    with c.db.connect() as conn:
        archived = conn.execute(sa.select(dlq_archive).where(dlq_archive.c.job_id == poison_id)).mappings().one()
        reason = conn.execute(sa.select(dead_letters).where(dead_letters.c.job_id == poison_id)).mappings().one()
    assert archived["body"] == body and archived["action"] == "purge"
    assert archived["reason"]["error_class"] == "PoisonMessage" and archived["attributes"]["MessageGroupId"] == "cus_p"
    assert reason["purged_at"] is not None
