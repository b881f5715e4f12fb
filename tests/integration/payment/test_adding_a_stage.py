"""The stage docs/architecture.md adds to the payment pipeline, taken from that page, really is one file and one line.

The test reads the page's ``pipelines/payment/sanctions.py`` block and its diff of ``pipelines/payment/kind.py``,
checks the diff applies to today's file, builds the payment kind with the stage list the diff makes, and runs
payments through it with the real database and the Stripe sandbox.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import uuid
from typing import Any

import httpx
import pytest

from engine.broker.envelope import Envelope
from engine.broker.queues import provision
from engine.jobs.job import Job
from engine.ops.dlq.plan import plan_for
from engine.runtime.container import Container
from engine.runtime.endpoints import resolve_endpoints
from pipelines.payment import kind as payment_kind
from pipelines.registry import JOB_KINDS
from tests.fixtures.services import ROOT

PAGE = ROOT / "docs" / "architecture.md"
KIND_FILE = ROOT / "pipelines" / "payment" / "kind.py"


def _documented() -> tuple[types.ModuleType, tuple[Any, ...]]:
    """The page's new module (executed) and the stage list its diff gives the payment kind."""
    text = PAGE.read_text()
    code = re.search(r"```python\n# pipelines/payment/sanctions\.py\n(.*?)```", text, re.S)
    diff = re.search(
        r"```diff\n--- a/pipelines/payment/kind\.py\n\+\+\+ b/pipelines/payment/kind\.py\n(.*?)```", text, re.S
    )
    assert code and diff, "docs/architecture.md lost its example"
    module = types.ModuleType("pipelines.payment.sanctions")
    sys.modules[module.__name__] = module  # dataclasses look their module up while the class is made
    try:
        exec(compile(code.group(1), "pipelines/payment/sanctions.py", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    lines = [line for line in diff.group(1).splitlines() if not line.startswith("@@")]
    today = KIND_FILE.read_text().splitlines()
    for line in lines:
        if line[:1] in (" ", "-"):
            assert line[1:] in today, f"the diff does not apply to pipelines/payment/kind.py: {line!r}"
    (added,) = [line[1:] for line in lines if line.startswith("+") and "stages=" in line]
    names = re.search(r"stages=\((.*)\)", added)
    assert names is not None
    scope = {**vars(payment_kind), "SanctionsStage": module.SanctionsStage}
    return module, tuple(scope[name.strip()] for name in names.group(1).split(","))


@pytest.fixture
def container(payment_settings) -> Container:  # type: ignore[no-untyped-def]
    _, stages = _documented()
    kinds = tuple(dataclasses.replace(k, stages=stages) if k.name == "payment" else k for k in JOB_KINDS)
    c = Container(settings=payment_settings, endpoints=resolve_endpoints(payment_settings), kinds=kinds)
    c.check_kinds()
    provision(c.sqs, payment_settings.queue_prefix, c.queues)
    return c


def _pay(c: Container, country: str) -> Job:
    customer = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "a@example.com", "country": country}
    data = {"customer": customer, "amount": 1000, "currency": "eur", "payment_method": "pm_card_visa"}
    envelope = Envelope.new(kind="payment", data=data, idempotency_scope=f"t:{uuid.uuid4()}", group_id=customer["id"])
    return c.run_job("payment", envelope.to_arg())


def test_the_documented_sanctions_stage_runs_in_the_payment_pipeline(container: Container, stripe_sim: Any) -> None:
    module, _ = _documented()
    names = ("fraud", "sanctions", "vat", "charge", "ledger", "invoice", "notify")
    assert container.job_kind("payment").stage_names == names
    stage = container.pipeline(container.job_kind("payment")).stages[1]
    assert stage.stripe is container.stripe  # handed over by name

    paid = _pay(container, "IE")
    assert paid.status == "succeeded"
    assert paid.output(module.SanctionsOutput).screened == ("IE", "US")

    refused = _pay(container, "KP")
    assert refused.status == "failed" and refused.error == {
        "code": "sanctions_blocked",
        "message": "Payments from KP are refused.",
    }
    assert refused.stage == "sanctions"
    # Nothing was charged for the refused payment.
    intents = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents").json()["data"]
    assert [pi for pi in intents if (pi.get("metadata") or {}).get("job_id") == refused.id] == []
    # A job stopped at the new stage is planned as a charge by `payments dlq replay`.
    stopped = dataclasses.replace(paid, status="dead_lettered", stage="sanctions")
    assert plan_for(stopped, kinds=container.kinds).action == "charge"
