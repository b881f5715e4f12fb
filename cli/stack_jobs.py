"""What the job-submitting commands (`settle upload`, `report`) share: the running stack's container, reading a
job's view, and waiting for a job to end."""

from __future__ import annotations

import time
from typing import Any

from cli.output import fail


def stack_container(*needs: str) -> Any:
    """The container of the running or configured stack; exits 1 naming what is missing among `needs`
    (endpoint names such as "database", "s3", "sqs")."""
    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    c = bootstrap()
    try:
        c.endpoints.require(*needs)
    except NothingRunningError as exc:
        fail(str(exc))
    return c


def load_job(c: Any, job_id: str) -> dict[str, Any] | None:
    """The API view of job `job_id`, or None when there is no such job."""
    from engine.db import jobs as job_repo

    with c.db.connect() as conn:
        try:
            return job_repo.get(conn, job_id).view()
        except job_repo.JobNotFound:
            return None


def wait_for_job(c: Any, job_id: str, timeout: float) -> dict[str, Any]:
    """Poll job `job_id` every 0.5 s until it is terminal or `timeout` seconds passed; its last view either way.

    The job must exist (the caller has just accepted it).
    """
    from engine.jobs.job import TERMINAL

    deadline = time.monotonic() + timeout
    while True:
        job = load_job(c, job_id)
        assert job is not None, f"job {job_id} vanished"
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.5)
