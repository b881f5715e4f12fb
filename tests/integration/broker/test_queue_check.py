"""The drift check on live queues, and the worker refusing the queues it would lose messages on or run twice."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from config.settings import Settings
from engine.broker.drift import check_queues, unsafe_queues
from engine.broker.queues import provision
from engine.runtime.worker import safe_queues
from pipelines.registry import CATALOGUE

ROOT = Path(__file__).resolve().parents[3]


def _url(sqs: Any, name: str) -> str:
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def test_provisioned_queues_pass_then_each_kind_of_drift_is_named(sqs: Any, queue_prefix: str) -> None:
    provision(sqs, queue_prefix, CATALOGUE)
    assert check_queues(sqs, queue_prefix, CATALOGUE) == []
    p = queue_prefix
    sqs.set_queue_attributes(QueueUrl=_url(sqs, f"{p}payments.fifo"), Attributes={"ContentBasedDeduplication": "true"})
    sqs.delete_queue(QueueUrl=_url(sqs, f"{p}refunds-dlq.fifo"))
    sqs.set_queue_attributes(QueueUrl=_url(sqs, f"{p}webhooks.fifo"), Attributes={"MessageRetentionPeriod": "86400"})
    found = {(d.queue, d.attribute, d.unsafe) for d in check_queues(sqs, p, CATALOGUE)}
    assert found == {
        (f"{p}payments.fifo", "ContentBasedDeduplication", True),
        (f"{p}refunds-dlq.fifo", "existence", True),
        (f"{p}webhooks.fifo", "MessageRetentionPeriod", False),
    }
    assert unsafe_queues(check_queues(sqs, p, CATALOGUE), p, CATALOGUE) == {"payments", "refunds"}
    settings = Settings(queue_prefix=p)
    assert safe_queues(sqs, {"payments", "refunds", "webhooks", "settlements"}, settings, CATALOGUE) == {
        "webhooks",
        "settlements",
    }


def test_the_worker_refuses_a_queue_with_content_based_deduplication(
    sqs: Any, local_aws_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    provision(sqs, queue_prefix, (CATALOGUE[0],))
    url = _url(sqs, f"{queue_prefix}payments.fifo")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})
    (tmp_path / "one_actor.py").write_text(
        textwrap.dedent(
            """
            import dramatiq

            @dramatiq.actor(queue_name="payments", actor_name="process_payment")
            def process_payment(env):
                raise AssertionError("a refused queue was consumed")
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "PAYMENTS_SQS_ENDPOINT_URL": local_aws_url,
        "PAYMENTS_QUEUE_PREFIX": queue_prefix,
        "PAYMENTS_DATA_DIR": str(tmp_path / "var"),
        "PAYMENTS_LOG_FORMAT": "text",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker", "-t", "1", "one_actor"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert f"{queue_prefix}payments.fifo: ContentBasedDeduplication is true, expected false" in done.stderr
    assert "refusing to consume payments" in done.stderr
