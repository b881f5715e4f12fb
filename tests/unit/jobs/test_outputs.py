"""Typed stage outputs: stored as the dicts they replaced, read back typed, and a clear error for a stage not run."""

from __future__ import annotations

from typing import Any

import pytest

from engine.jobs.job import Job
from engine.jobs.output import LedgerOutput, OutputMismatch, StageNotRun
from engine.jobs.pipeline import _stored
from pipelines.payment.charge import ChargeOutput
from pipelines.payment.fraud import FraudOutput
from pipelines.payment.vat import VatOutput
from pipelines.refund.amount import AmountOutput, NotDecided
from pipelines.subscription.prepare import PrepareOutput
from pipelines.webhook.handle import HandleOutput


def _job(**stage_results: Any) -> Job:
    return Job(
        id="job_1", kind="payment", status="processing", stage=None, idempotency_scope="s", queue="payments.fifo",
        group_id="g", request={}, stage_results=stage_results,
    )  # fmt: skip


VAT = {"net": 1000, "vat": 230, "total": 1230, "currency": "eur", "country": "IE", "rate": "23", "scheme": "domestic",
       "notes": ["vat_id_missing"]}  # fmt: skip


@pytest.mark.parametrize(
    "stored",
    [
        # The shapes the stages wrote before outputs were typed.
        ("vat", VAT),
        ("fraud", {"decision": "approve", "score": 10, "reasons": []}),
        ("charge", {"payment_intent": "pi_1", "status": "succeeded", "generation": 1, "charge": "ch_1"}),
        ("charge", {"payment_intent": "pi_1", "status": "requires_action", "generation": 2, "charge": None}),
        ("charge", {"payment_intent": None, "status": "declined", "generation": 1}),
        ("ledger", {"effect_key": "payment:job_1:capture"}),
        (
            "amount",
            {
                "payment": "job_p",
                "payment_intent": "pi_1",
                "customer": "cus_1",
                "amount": 500,
                "net": 407,
                "vat": 93,
                "currency": "eur",
                "vat_country": "IE",
                "vat_rate": "23",
                "vat_scheme": "oss",
            },
        ),
        ("amount", {"decided": False}),
        ("prepare", {"action": "none"}),
        ("prepare", {"action": "cancel", "charge": None, "success": {"cancel_at_period_end": True}}),
        ("prepare", {"action": "change", "charge": None, "success": {}, "note": "plan_unchanged"}),
        ("handle", {"outcome": "booked", "payment": "job_p", "booked": ["re_1"]}),
    ],
)
def test_outputs_store_the_json_they_replace(stored: tuple[str, dict[str, Any]]) -> None:
    stage, data = stored
    kind = {
        "vat": VatOutput, "fraud": FraudOutput, "charge": ChargeOutput, "ledger": LedgerOutput,
        "amount": NotDecided if "decided" in data else AmountOutput, "prepare": PrepareOutput, "handle": HandleOutput,
    }[stage]  # fmt: skip
    output = _job(**{stage: data}).output(kind)
    assert output.to_json() == data
    assert _stored(stage, output) == data


def test_a_charging_decision_keeps_every_key() -> None:
    decision = {
        "action": "renew", "subscription": "sub_1", "customer": {"id": "cus_1"}, "charge": {"amount": 900},
        "lines": [{"description": "Basic", "amount": 900}], "success": {"status": "active"}, "decline": None,
        "success_event": "renewed", "decline_event": None, "create": None, "billed_at": "2026-01-01T00:00:00Z",
        "after": {"id": "sub_1"}, "after_decline": {"id": "sub_1"},
    }  # fmt: skip
    assert _job(prepare=decision).output(PrepareOutput).to_json() == decision
    with_credit = {**decision, "credit": 410}
    assert _job(prepare=with_credit).output(PrepareOutput).to_json() == with_credit


def test_reading_the_output_of_a_stage_not_run_is_a_clear_error() -> None:
    job = _job(fraud={"decision": "approve", "score": 0, "reasons": []}, charge={})
    with pytest.raises(StageNotRun, match="job job_1 has no output of stage 'vat'"):
        job.output(VatOutput)
    assert job.output_or_none(VatOutput) is None
    assert job.output_or_none(ChargeOutput) is None  # a stage that ran and produced nothing (a skipped step)
    with pytest.raises(OutputMismatch, match="VatOutput"):
        _job(vat={"net": 1}).output(VatOutput)


def test_vat_output_gives_back_the_assessment_figures() -> None:
    figures = _job(vat=VAT).output(VatOutput).figures()
    assert (figures.net, figures.vat, figures.total, figures.currency, figures.country) == (
        1000,
        230,
        1230,
        "eur",
        "IE",
    )


def test_a_stage_returning_another_stage_s_output_is_refused() -> None:
    with pytest.raises(TypeError, match="stage 'charge' returned the output of stage 'vat'"):
        _stored("charge", VatOutput(1, 0, 1, "eur", "IE", "0", "domestic"))


def test_tuple_fields_read_back_as_tuples() -> None:
    assert _job(vat=VAT).output(VatOutput).notes == ("vat_id_missing",)
    assert _job(fraud={"decision": "review", "score": 60, "reasons": ["amount_high"]}).output(FraudOutput).reasons == (
        "amount_high",
    )
