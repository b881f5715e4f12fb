"""A client generated from /openapi.json works against the live ingest (issue 16): datamodel-code-generator
makes pydantic models of every component, and an upstream team's code built on them creates a payment, a batch
and a subscription and reads the answers back, each through the generated models."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.integration.ingest.conftest import LiveIngest

pytestmark = pytest.mark.integration

CODEGEN = Path(sys.executable).with_name("datamodel-codegen")


def _generate(document: bytes, where: Path) -> ModuleType:
    """The models datamodel-code-generator writes for ``document``, imported."""
    source, target = where / "openapi.json", where / "payments_client_models.py"
    source.write_bytes(document)
    argv = [
        str(CODEGEN), "--input", str(source), "--input-file-type", "openapi", "--openapi-scopes", "schemas",
        "--output", str(target), "--output-model-type", "pydantic_v2.BaseModel",
    ]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    spec = importlib.util.spec_from_file_location("payments_client_models", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: the generated module postpones its annotations, which pydantic resolves through it.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_generated_client_creates_and_reads_jobs(live_ingest: LiveIngest, tmp_path: Path) -> None:
    bearer = {"Authorization": f"Bearer {live_ingest.token('operator')}"}
    with httpx.Client(base_url=live_ingest.url, timeout=30) as http:
        api = _generate(http.get("/openapi.json").content, tmp_path)

        def post(path: str, body: Any) -> httpx.Response:
            """``body`` (a generated model) as JSON, under a new Idempotency-Key."""
            headers = {**bearer, "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
            return http.post(path, content=body.model_dump_json(exclude_none=True), headers=headers)

        customer = api.Customer(id="cus_gen_" + uuid.uuid4().hex[:8], email="anna@example.ie", country="IE")
        payment = api.PaymentRequest(customer=customer, amount=1000, currency="EUR", payment_method="pm_card_visa")
        accepted = post("/v1/payments", payment)
        assert accepted.status_code == 202, accepted.text
        job = api.Job.model_validate(accepted.json())
        assert job.kind == "payment" and job.status == "accepted"

        # getJob, through the 202's Location as its link says: the same job, typed by the same model.
        again = http.get(accepted.headers["Location"], headers=bearer)
        assert again.status_code == 200 and api.Job.model_validate(again.json()).id == job.id
        listed = http.get("/v1/jobs", params={"customer": customer.id}, headers=bearer)
        assert [j.id for j in api.JobList.model_validate(listed.json()).data] == [job.id]

        item = api.PaymentBatchItem(idempotency_key=uuid.uuid4().hex, payment=payment)
        batch = post("/v1/payments/batch", api.PaymentBatch(items=[item.model_dump(mode="json", exclude_none=True)]))
        assert batch.status_code == 207, batch.text
        [result] = api.BatchResult.model_validate(batch.json()).data
        assert result.status == 202 and result.job is not None

        created = post(
            "/v1/subscriptions",
            api.SubscriptionCreate(customer=customer, plan="pro-monthly", payment_method="pm_card_visa"),
        )
        assert created.status_code == 202, created.text
        subscription_id = created.json()["subscription"]["id"]
        read = http.get(f"/v1/subscriptions/{subscription_id}", headers=bearer)
        assert read.status_code == 200 and api.Subscription.model_validate(read.json()).id == subscription_id

        missing = http.get("/v1/jobs/job_nothing_here", headers=bearer)
        assert missing.status_code == 404
        assert api.ErrorEnvelope.model_validate(missing.json()).error.code == "not_found"
