"""deploy/aws/data-plane.yaml created through CloudFormation on the local endpoint (moto), then used by the engine.

The stack is made by CloudFormation, never by ``provision``: the ingest and a real ``payments worker`` process find
its queues and buckets by name (the stack's QueuePrefix is the engine's PAYMENTS_QUEUE_PREFIX) and take a payment,
a refund and a POS settlement through them.  ``payments queues check`` passes on the stack as created and names
a visibility timeout changed by hand.  What moto's CloudFormation does not create (alarms, bucket policies, Object
Lock, lifecycle, versioning) is listed in docs/deploy.md with the static checks that stand in for it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import stripe
from click.testing import CliRunner

from cli.main import cli
from config.settings import get_settings
from engine.adapters.auth import mint
from engine.adapters.s3 import bucket_names
from engine.broker.drift import check_queues
from engine.db import jobs as job_repo
from engine.jobs.job import Job
from pipelines.registry import CATALOGUE
from tests.fixtures.services import ROOT
from tests.integration.refunds.helpers import entries_of
from tests.integration.settlement.conftest import csv_body

pytestmark = [
    pytest.mark.integration,
    # moto skips the resource types it lacks with this warning; docs/deploy.md lists them and what checks them.
    pytest.mark.filterwarnings("ignore:Tried to parse .* but it.s not supported by moto"),
]

TEMPLATE = ROOT / "deploy" / "aws" / "data-plane.yaml"


def _client(service: str, url: str) -> Any:
    return boto3.client(
        service, endpoint_url=url, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def stack(local_aws_url: str, queue_prefix: str) -> dict[str, str]:
    """The data-plane stack for this test's prefix, created by CloudFormation; its outputs."""
    cf = _client("cloudformation", local_aws_url)
    name = f"{queue_prefix}data"
    cf.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "QueuePrefix", "ParameterValue": queue_prefix},
            {"ParameterKey": "AlarmEmail", "ParameterValue": "ops@example.com"},
        ],
    )
    described = cf.describe_stacks(StackName=name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE", described
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    outputs["StackName"] = name
    return outputs


#: The resource types of data-plane.yaml that moto's CloudFormation skips (docs/deploy.md lists them and what
#: checks them instead).  A moto that starts creating one, or a template gaining one moto lacks, fails here.
SKIPPED_BY_MOTO = {"AWS::CloudWatch::Alarm", "AWS::S3::BucketPolicy", "AWS::SNS::Subscription"}


def test_moto_skips_only_the_documented_resource_types(stack: dict[str, str], local_aws_url: str) -> None:
    from cfnlint.decode import cfn_yaml

    declared = {k: v["Type"] for k, v in cfn_yaml.loads(TEMPLATE.read_text())["Resources"].items()}
    cf = _client("cloudformation", local_aws_url)
    made = cf.list_stack_resources(StackName=stack["StackName"])["StackResourceSummaries"]
    # moto lists a skipped resource with an empty logical id and type.
    created = {r["LogicalResourceId"] for r in made if r["LogicalResourceId"]}
    assert created <= set(declared)
    skipped = {declared[k] for k in set(declared) - created}
    assert skipped == SKIPPED_BY_MOTO
    assert len(made) - len(created) == sum(1 for t in declared.values() if t in SKIPPED_BY_MOTO)


def test_the_stack_is_what_the_engine_requires(stack: dict[str, str], local_aws_url: str, queue_prefix: str) -> None:
    sqs = _client("sqs", local_aws_url)
    assert check_queues(sqs, queue_prefix, CATALOGUE) == []
    # Every queue of the catalogue, KMS-encrypted with the stack's key, and nothing else under the prefix.
    urls = sqs.list_queues(QueueNamePrefix=queue_prefix)["QueueUrls"]
    assert len(urls) == 2 * len(CATALOGUE)
    key_id = stack["DataKeyArn"].rsplit("/", 1)[-1]
    for url in urls:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])["Attributes"]
        assert attrs["KmsMasterKeyId"] == key_id, url
    # The engine's buckets are the stack's (the reports bucket as well), encrypted with the same key.
    settings = get_settings().model_copy(update={"queue_prefix": queue_prefix})
    made = {stack[k] for k in ("InvoicesBucketName", "SettlementsBucketName", "ReportsBucketName", "AuditBucketName")}
    assert set(bucket_names(settings)) <= made and f"{queue_prefix}payments-reports" in made
    s3 = _client("s3", local_aws_url)
    for bucket in made:
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == stack["DataKeyArn"]


@pytest.fixture
def cli_env(local_aws_url: str, queue_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PAYMENTS_SQS_ENDPOINT_URL", local_aws_url)
    monkeypatch.setenv("PAYMENTS_QUEUE_PREFIX", queue_prefix)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_queues_check_passes_on_the_stack_then_names_a_hand_changed_timeout(
    stack: dict[str, str], cli_env: None, local_aws_url: str, queue_prefix: str
) -> None:
    runner = CliRunner()
    clean = runner.invoke(cli, ["queues", "check"])
    assert clean.exit_code == 0, clean.output
    sqs = _client("sqs", local_aws_url)
    url = sqs.get_queue_url(QueueName=f"{queue_prefix}refunds.fifo")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    drifted = runner.invoke(cli, ["queues", "check"])
    assert drifted.exit_code == 1
    assert drifted.output.strip() == f"{queue_prefix}refunds.fifo: VisibilityTimeout is 45, expected 300"
    as_json = runner.invoke(cli, ["queues", "check", "--json"])
    assert as_json.exit_code == 1
    report = json.loads(as_json.output)
    assert report["ok"] is False and report["refused"] == []
    assert report["differences"] == [
        {
            "queue": f"{queue_prefix}refunds.fifo",
            "attribute": "VisibilityTimeout",
            "expected": "300",
            "actual": "45",
            "unsafe": False,
        }
    ]


# --- The engine on the stack: ingest in this process, a real `payments worker` process -------------------------


@pytest.fixture
def engine_on_stack(stack: dict[str, str], payment_settings):  # type: ignore[no-untyped-def]
    """A container on the stack's queues and buckets: nothing provisioned by the engine itself."""
    from engine.runtime.container import Container
    from engine.runtime.endpoints import resolve_endpoints

    return Container(settings=payment_settings, endpoints=resolve_endpoints(payment_settings))


@pytest.fixture
def worker(engine_on_stack, tmp_path: Path) -> Iterator[Callable[[], str]]:  # type: ignore[no-untyped-def]
    """A `payments worker` process on the stack's queues; yields a function returning its log so far."""
    s = engine_on_stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env.update(
        {
            "PAYMENTS_DATA_DIR": str(tmp_path / "worker-var"),
            "PAYMENTS_DATABASE_URL": s.database.url.get_secret_value(),
            "PAYMENTS_SQS_ENDPOINT_URL": str(s.sqs.endpoint_url),
            "PAYMENTS_SQS_WAIT_TIME_SECONDS": "1",
            "PAYMENTS_S3_ENDPOINT_URL": str(s.s3.endpoint_url),
            "PAYMENTS_REDIS_URL": s.redis.url.get_secret_value() if s.redis.url else "",
            "PAYMENTS_REDIS_PREFIX": str(s.redis.prefix),
            "PAYMENTS_QUEUE_PREFIX": s.queue_prefix,
            "PAYMENTS_STRIPE_API_KEY": s.stripe.api_key.get_secret_value(),
            "PAYMENTS_STRIPE_API_BASE": str(s.stripe.api_base),
            "PAYMENTS_STRIPE_MAX_NETWORK_RETRIES": "0",
            "PAYMENTS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
            "PAYMENTS_RETRY_BACKOFF_MAX_SECONDS": "1",
            "PAYMENTS_METRICS_PORT": "0",
            "PAYMENTS_LOG_FORMAT": "text",
        }
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "-t", "4"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path.read_text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _settled(container, job_id: str, log: Callable[[], str], timeout: float = 60) -> Job:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        with container.db.connect() as conn:
            job = job_repo.get(conn, job_id)
        if job.status not in ("accepted", "processing") or time.monotonic() > deadline:
            assert job.status == "succeeded", (job.view(), log()[-3000:])
            return job
        time.sleep(0.2)


def test_a_payment_a_refund_and_a_settlement_go_through_the_stack(  # type: ignore[no-untyped-def]
    engine_on_stack, worker, stack, local_aws_url, stripe_sim
) -> None:
    from fastapi.testclient import TestClient

    from engine.ingest.app import create_app

    c = engine_on_stack
    api = TestClient(create_app(c))

    def headers(role: str, content_type: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {mint(c.settings, role, sub='deploy-test', ttl_seconds=600)}"}
        h["Idempotency-Key"] = uuid.uuid4().hex
        if content_type:
            h["Content-Type"] = content_type
        return h

    customer = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "anna@example.ie", "country": "IE"}
    body = {"customer": customer, "amount": 2500, "currency": "EUR", "payment_method": "pm_card_visa"}
    accepted = api.post("/v1/payments", json=body, headers=headers("operator"))
    assert accepted.status_code == 202, accepted.text
    payment = _settled(c, accepted.json()["id"], worker)
    total = payment.public["amounts"]["total"]

    accepted = api.post("/v1/refunds", json={"payment": payment.id, "amount": 1000}, headers=headers("support"))
    assert accepted.status_code == 202, accepted.text
    refund = _settled(c, accepted.json()["id"], worker)

    terminal = f"T{uuid.uuid4().hex[:8]}"
    ts = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0).isoformat()
    rows = [(terminal, f"S{i}", ts, "sale", 100 + i, "eur", "4242", "", "") for i in range(3)]
    accepted = api.post("/v1/settlements", content=csv_body(rows), headers=headers("operator", "text/csv"))
    assert accepted.status_code == 202, accepted.text
    settlement = _settled(c, accepted.json()["id"], worker)
    assert settlement.view()["counts"] == {"rows": 3, "accepted": 3, "rejected": 0, "duplicate": 0}

    # Money: Stripe charged the total once and refunded 1000 once; the ledger says the same.
    client = stripe.StripeClient(
        c.settings.stripe.api_key.get_secret_value(), base_addresses={"api": stripe_sim.base_url}
    )
    intent = client.v1.payment_intents.retrieve(payment.public["stripe"]["payment_intent"])
    assert intent.amount == total and intent.status == "succeeded"
    refunds = client.v1.refunds.list({"payment_intent": intent.id}).data
    assert [r.amount for r in refunds] == [1000]
    balance: dict[str, int] = {}
    for account, value in entries_of_container(c, [payment.id, refund.id]):
        balance[account] = balance.get(account, 0) + value
    # Clearing holds what Stripe pays out: the charge less its fee (booked from the balance transaction) and refund.
    charge = client.v1.charges.retrieve(str(intent.latest_charge), params={"expand": ["balance_transaction"]})
    assert balance["fees"] == charge.balance_transaction.fee > 0
    assert balance["stripe_clearing"] == total - 1000 - balance["fees"]
    # The batch went to the stack's settlements bucket; the worker consumed every queue (none refused).
    keys = [
        o["Key"]
        for o in _client("s3", local_aws_url).list_objects_v2(Bucket=stack["SettlementsBucketName"])["Contents"]
    ]
    assert keys, "the settlement batch is not in the stack's bucket"
    assert "refusing" not in worker() and "queue check" not in worker(), worker()[-3000:]


def entries_of_container(c, job_ids: list[str]) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]

    return entries_of(c, job_ids)
