"""Replay safety (issue 7, item 3): a job whose charge succeeded at Stripe before its worker died is completed by
a replay with no second charge, even after Stripe forgot the idempotency key; a replay interrupted between the
send and the delete loses nothing and charges nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import pytest
import sqlalchemy as sa
from dramatiq.errors import Retry

from engine.broker.envelope import Envelope
from engine.broker.ids import deduplication_id
from engine.db.dead_letters import SqlDeadLetterSink
from engine.db.tables import dead_letters, jobs
from engine.errors import TransientError
from engine.ops.dlq.entries import DlqEntry, DlqFilter
from engine.ops.dlq.replay import plan, replay
from engine.ops.dlq.sweep import sweep
from engine.runtime.container import Container
from tests.integration.dlq.conftest import depth, intents, job, queue_url, sim, submit, wait_until

DAY_AND_AN_HOUR = 25 * 3600


def _charged_then_died(c: Container, stripe_sim: Any) -> tuple[str, dict[str, Any]]:
    """A payment whose PaymentIntent succeeded at Stripe while the worker died before writing anything: the
    answer is lost on the wire (``drop_after_rate``), and the note the stage wrote is removed, as a SIGKILL
    right after Stripe answered would have left it.  Returns the job id and the message's envelope."""
    job_id = submit(c)
    # Take the message off the work queue: this test plays the worker.
    url = queue_url(c, "payments.fifo")
    (raw,) = c.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)["Messages"]
    c.sqs.delete_message(QueueUrl=url, ReceiptHandle=raw["ReceiptHandle"])
    envelope = Envelope.model_validate_json(raw["Body"]).to_arg()
    customer = envelope["data"]["customer"]
    c.stripe.customer_for(job_id, customer["id"], customer["email"])  # known before the outage
    c.stripe.card_country(envelope["data"]["payment_method"])  # likewise (the fraud stage looks it up)
    sim(stripe_sim, drop_after_rate=1.0)
    # A lost connection is Stripe's failure, not the job's: the actor gives the message back, no attempt spent.
    with pytest.raises(Retry) as caught:
        c.run_job("payment", envelope)
    assert isinstance(caught.value.__cause__, TransientError)
    sim(stripe_sim, drop_after_rate=0.0)
    c.stripe.breaker.record_success()
    with c.db.begin() as conn:
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(stage_results=jobs.c.stage_results.op("-")("charge_progress"))
        )
    assert [pi["status"] for pi in intents(stripe_sim, job_id)] == ["succeeded"]
    assert job(c, job_id).stage == "vat"  # fraud and VAT committed before the charge; nothing of the charge
    return job_id, envelope


def test_a_job_older_than_the_key_window_looks_its_intent_up_before_charging(
    payment_container: Container, stripe_sim: Any
) -> None:
    c = payment_container
    job_id, envelope = _charged_then_died(c, stripe_sim)
    # A day later: Stripe has forgotten the key {job}:charge:g1; the job was never re-sent (generation 0).
    sim(stripe_sim, "clock", advance_seconds=DAY_AND_AN_HOUR)
    with c.db.begin() as conn:
        conn.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(created_at=sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, DAY_AND_AN_HOUR))
        )
    assert c.run_job("payment", envelope).status == "succeeded"
    charged = intents(stripe_sim, job_id)
    assert [pi["status"] for pi in charged] == ["succeeded"]  # the old intent was found, none created
    assert job(c, job_id).view()["stripe"]["payment_intent"] == charged[0]["id"]


def test_replay_of_a_job_charged_before_the_crash_interrupted_halfway_charges_once(
    payment_container: Container,
    stripe_sim: Any,
    start_worker: Callable[[], dramatiq.Worker],
) -> None:
    c = payment_container
    job_id, envelope = _charged_then_died(c, stripe_sim)
    # Its worker died on every receive: SQS redrove the message, no reason was written; the sweep records one.
    scope = envelope["idempotency_scope"]
    c.sqs.send_message(
        QueueUrl=queue_url(c, "payments-dlq.fifo"),
        MessageBody=Envelope.model_validate(envelope).to_json(),
        MessageGroupId=envelope["group_id"],
        MessageDeduplicationId=deduplication_id(scope),
    )
    assert sweep(c.sqs, c.db, SqlDeadLetterSink(c.db), c.settings.queue_prefix) == 1
    assert job(c, job_id).status == "dead_lettered"
    sim(stripe_sim, "clock", advance_seconds=DAY_AND_AN_HOUR)  # it sat in the DLQ for a day

    (planned,) = plan(c, DlqFilter(ids=frozenset({job_id})))
    assert planned.action == "charge" and "looks the PaymentIntent up" in planned.detail

    class Crash(Exception):
        pass

    def crash(entry: DlqEntry) -> None:
        raise Crash(entry.message.message_id)

    with pytest.raises(Crash):
        replay(c, DlqFilter(ids=frozenset({job_id})), between_send_and_delete=crash)
    # Sent and committed, not deleted: the message is in both queues, none lost.
    assert depth(c, "payments.fifo") == 1 and depth(c, "payments-dlq.fifo") == 1
    assert job(c, job_id).status == "processing" and job(c, job_id).enqueue_generation == 1

    # The operator runs the replay again: the DLQ copy is sent once more (generation 2), then deleted.
    (again,) = replay(c, DlqFilter(ids=frozenset({job_id})))
    assert again.outcome == "replayed" and again.dedup_id == deduplication_id(scope, ":replay:2")
    assert depth(c, "payments-dlq.fifo") == 0

    start_worker()
    wait_until(lambda: job(c, job_id).status == "succeeded" and depth(c, "payments.fifo") == 0)
    assert [pi["status"] for pi in intents(stripe_sim, job_id)] == ["succeeded"]
    with c.db.connect() as conn:
        row = conn.execute(sa.select(dead_letters).where(dead_letters.c.job_id == job_id)).mappings().one()
    assert row["error_class"] == "WorkerLost" and row["replayed_at"] is not None
