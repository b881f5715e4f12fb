"""A real `payments worker` process (the actors package, the engine's SQS broker) settles an uploaded batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from engine.db import jobs as job_repo
from tests.fixtures.services import ROOT
from tests.integration.settlement.conftest import csv_body

TS = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0).isoformat()


def test_payments_worker_settles_an_uploaded_batch(api, headers, container, terminal, tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = container.settings
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
            "PAYMENTS_METRICS_PORT": "0",
            "PAYMENTS_LOG_LEVEL": "WARNING",
        }
    )
    rows = [(terminal, f"S{i}", TS, "sale", 100 + i, "eur", "4242", "", "") for i in range(50)]
    rows.append((terminal, "V1", TS, "void", 101, "eur", "4242", "", "S1"))
    answer = api.post("/v1/settlements", content=csv_body(rows), headers=headers())
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "-Q", "settlements", "-t", "2"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with container.db.connect() as conn:
                job = job_repo.get(conn, job_id)
            if job.status not in ("accepted", "processing"):
                break
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
    view = job.view()
    assert view["status"] == "succeeded", (view, (tmp_path / "worker.log").read_text()[-3000:])
    assert view["counts"] == {"rows": 51, "accepted": 51, "rejected": 0, "duplicate": 0}
    assert view["totals"][0]["sales"] == sum(100 + i for i in range(50)) and view["totals"][0]["voids"] == 101
