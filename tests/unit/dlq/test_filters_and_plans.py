"""The pure parts of dead-letter operations: filters, ``--since``, replay plans, pacing, the charge lookup rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.jobs.job import Job
from engine.ops.dlq.entries import DlqEntry, DlqFilter, is_poison, parse_since
from engine.ops.dlq.messages import DlqMessage
from engine.ops.dlq.plan import plan_for
from engine.ops.dlq.replay import RateLimiter
from pipelines.payment.charge import must_look_up_first
from pipelines.registry import CATALOGUE

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _job(**kw: Any) -> Job:
    base: dict[str, Any] = dict(
        id="job_1", kind="payment", status="dead_lettered", stage=None, idempotency_scope="s", queue="payments.fifo",
        group_id="cus_1", request={}, created_at=NOW,
    )  # fmt: skip
    return Job(**{**base, **kw})


def _entry(reason: dict[str, Any] | None = None, dedup: str | None = None, kind: str = "payment") -> DlqEntry:
    message = DlqMessage(
        spec=CATALOGUE[0], dlq_name="payments-dlq.fifo", dlq_url="u", message_id="m-dlq", receipt_handle="r",
        body="{}", group_id="cus_1", dedup_id=dedup, sent_at=NOW, receive_count=3,
    )  # fmt: skip
    return DlqEntry(message=message, envelope={"job_id": "job_1", "kind": kind}, reason=reason, job=None)


def test_since_takes_iso_times_and_durations() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("7d", NOW) == NOW - timedelta(days=7)
    assert parse_since("2026-11-26T10:00:00") == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert parse_since("2026-11-26T10:00:00Z") == datetime(2026, 11, 26, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_filters_match_ids_kind_time_and_error_text() -> None:
    reason = {"error_class": "TransientError", "error_message": "Stripe APIError", "message_id": "m-orig",
              "last_failed_at": NOW}  # fmt: skip
    entry = _entry(reason, dedup="dlq:m-work")
    assert DlqFilter().matches(entry) and DlqFilter().empty
    for ident in ("job_1", "m-dlq", "m-work", "m-orig"):
        assert DlqFilter(ids=frozenset({ident})).matches(entry), ident
    assert not DlqFilter(ids=frozenset({"job_2"})).matches(entry)
    assert not DlqFilter(kind="refund").matches(entry)
    assert DlqFilter(error="apierror").matches(entry) and not DlqFilter(error="poison").matches(entry)
    assert DlqFilter(since=NOW - timedelta(minutes=1)).matches(entry)
    assert not DlqFilter(since=NOW + timedelta(minutes=1)).matches(entry)
    assert _entry(None).listing()["error"]["class"] == "Unknown"


@pytest.mark.parametrize(
    ("job", "action"),
    [
        (_job(stage=None), "charge"),
        (_job(stage="vat"), "charge"),
        (_job(stage="charge", stage_results={"charge": {"payment_intent": "pi_1"}}), "resume_after_charge"),
        (_job(stage="ledger"), "resume_after_charge"),
        (_job(stage="invoice"), "notify_only"),
        (_job(status="succeeded", stage="notify"), "nothing"),
        (_job(kind="refund", stage="lock"), "resume"),
        (None, "unknown"),
    ],
)
def test_replay_plan_follows_the_recovery_point(job: Job | None, action: str) -> None:
    assert plan_for(job).action == action


def test_poison_cannot_be_replayed() -> None:
    assert is_poison("not json") and is_poison('{"version": 1}')
    assert plan_for(None, poison=True).action == "poison"


def test_charge_looks_up_first_when_replayed_or_older_than_the_key_window() -> None:
    assert not must_look_up_first(_job(), now=NOW + timedelta(hours=1))
    assert must_look_up_first(_job(enqueue_generation=1), now=NOW)
    assert must_look_up_first(_job(), now=NOW + timedelta(hours=24))


def test_rate_limiter_spaces_calls() -> None:
    ticks = iter([0.0, 0.0, 10.0])
    limiter = RateLimiter(4.0, clock=lambda: next(ticks))
    limiter.wait()
    started = datetime.now(UTC)
    limiter.wait()  # 0.25 s after the first
    assert datetime.now(UTC) - started >= timedelta(seconds=0.2)
    RateLimiter(None).wait()
