"""Dramatiq's own CLI on the engine's broker (`dramatiq payments_broker_module actors`), and the dramatiq flags
`payments worker` passes through (--pid-file, --log-file, --worker-shutdown-timeout, -v)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from engine.broker.broker import SQSBroker
from engine.broker.queues import provision
from pipelines.registry import CATALOGUE
from tests.integration.broker.helpers import envelope, message, wait_until

ROOT = Path(__file__).resolve().parents[3]


def _env(local_aws_url: str, queue_prefix: str, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")},
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "PAYMENTS_SQS_ENDPOINT_URL": local_aws_url,
        "PAYMENTS_QUEUE_PREFIX": queue_prefix,
        "PAYMENTS_DATA_DIR": str(tmp_path / "var"),
        "PAYMENTS_SQS_WAIT_TIME_SECONDS": "1",
    }


def test_importing_the_broker_module_binds_the_actors_to_sqs(
    local_aws_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    code = textwrap.dedent(
        """
        import dramatiq, payments_broker_module, actors
        broker = dramatiq.get_broker()
        print(type(broker).__name__, " ".join(sorted(broker.get_declared_actors())))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(local_aws_url, queue_prefix, tmp_path),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    kind, actors = out.stdout.split(" ", 1)
    assert kind == "SQSBroker" and "process_payment" in actors.split()


def test_dramatiq_cli_consumes_with_the_broker_module(
    sqs: Any, local_aws_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    provision(sqs, queue_prefix, (CATALOGUE[0],))
    done = tmp_path / "done"
    done.mkdir()
    (tmp_path / "file_actors.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            import dramatiq

            @dramatiq.actor(queue_name="payments", actor_name="process_payment")
            def process_payment(env):
                pathlib.Path({str(done)!r}, env["message_id"]).touch()
            """
        )
    )
    sender = SQSBroker(sqs, catalogue=CATALOGUE, prefix=queue_prefix)
    sender.declare_queue("payments")
    sent = sender.enqueue_many([message(envelope(f"cus_{i}")) for i in range(3)])
    pid_file = tmp_path / "dramatiq.pid"
    dramatiq_bin = Path(sys.executable).with_name("dramatiq")
    cmd = [
        str(dramatiq_bin),
        "payments_broker_module",
        "file_actors",
        "-p",
        "1",
        "-t",
        "2",
        "--pid-file",
        str(pid_file),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(local_aws_url, queue_prefix, tmp_path))
    try:
        assert wait_until(lambda: len(list(done.iterdir())) == 3, timeout=60)
        assert {p.name for p in done.iterdir()} == {m.message_id for m in sent}
        assert pid_file.read_text().strip() == str(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    sender.close()


def test_payments_worker_passes_the_dramatiq_flags(
    sqs: Any, local_aws_url: str, queue_prefix: str, tmp_path: Path
) -> None:
    provision(sqs, queue_prefix, (CATALOGUE[0],))
    (tmp_path / "idle_actors.py").write_text(
        textwrap.dedent(
            """
            import dramatiq

            @dramatiq.actor(queue_name="payments", actor_name="process_payment")
            def process_payment(env):
                pass
            """
        )
    )
    pid_file, log_file = tmp_path / "worker.pid", tmp_path / "worker.log"
    cmd = [
        sys.executable, "-m", "cli.main", "worker", "-p", "1", "-t", "1", "-Q", "payments.fifo", "--pid-file",
        str(pid_file), "--log-file", str(log_file), "--worker-shutdown-timeout", "500", "-v", "idle_actors",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(local_aws_url, queue_prefix, tmp_path))
    try:
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text().strip() == str(proc.pid), timeout=60)
        assert wait_until(lambda: log_file.exists() and "worker consuming" in log_file.read_text(), timeout=60)
        assert '"level": "debug"' in log_file.read_text()  # -v: DEBUG, in the file, one JSON object a line
        # A second worker on the same pid file refuses to start.
        second = subprocess.run(
            [*cmd[:-1], "idle_actors"], cwd=ROOT, env=_env(local_aws_url, queue_prefix, tmp_path),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2 and "pid file" in second.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not pid_file.exists()
