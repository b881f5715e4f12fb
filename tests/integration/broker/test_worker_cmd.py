"""`payments worker` as a user runs it: a subprocess that consumes, then stops gracefully on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.broker.broker import SQSBroker
from engine.broker.queues import provision
from pipelines.registry import CATALOGUE
from tests.integration.broker.helpers import envelope, message, queue_counts, wait_until

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("processes", [1, 2])
def test_worker_command_processes_and_stops_on_sigterm(
    sqs: Any, local_aws_url: str, queue_prefix: str, tmp_path: Path, processes: int
) -> None:
    provision(sqs, queue_prefix, (CATALOGUE[0],))
    out = tmp_path / "done"
    out.mkdir()
    (tmp_path / "bench_actors.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            import dramatiq

            @dramatiq.actor(queue_name="payments", actor_name="process_payment")
            def process_payment(env):
                pathlib.Path({str(out)!r}, env["message_id"]).touch()
            """
        )
    )
    sender = SQSBroker(sqs, catalogue=CATALOGUE, prefix=queue_prefix)
    sender.declare_queue("payments")
    sent = sender.enqueue_many([message(envelope(f"cus_{i}")) for i in range(5)])
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "PAYMENTS_SQS_ENDPOINT_URL": local_aws_url,
        "PAYMENTS_QUEUE_PREFIX": queue_prefix,
        "PAYMENTS_DATA_DIR": str(tmp_path / "var"),
        "PAYMENTS_SQS_WAIT_TIME_SECONDS": "1",
    }
    cmd = [sys.executable, "-m", "cli.main", "worker", "-p", str(processes), "-t", "2", "-Q", "payments.fifo"]
    proc = subprocess.Popen([*cmd, "bench_actors"], cwd=ROOT, env=env)
    try:
        assert wait_until(lambda: len(list(out.iterdir())) == 5, timeout=30)
        assert {p.name for p in out.iterdir()} == {m.message_id for m in sent}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_until(lambda: queue_counts(sqs, sender.queue_url("payments")) == (0, 0), timeout=5)
    sender.close()
