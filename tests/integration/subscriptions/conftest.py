"""A subscription world: the real database, Redis, local SQS/S3 and the Stripe sandbox, the ingest app in-process,
a private seller (so invoice numbering can be checked gap-free), and helpers to drive the worker and scheduler."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.db import jobs as job_repo
from engine.db.tables_subscriptions import invoices, subscriptions
from engine.jobs.job import Job
from engine.runtime.container import Container
from pipelines.subscription import renewals


@dataclass
class World:
    c: Container
    api: TestClient
    sandbox: Any

    def headers(self, role: str = "operator", key: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {mint(self.c.settings, role, sub='subs-tests')}",
            "Idempotency-Key": key or uuid.uuid4().hex,
        }

    def post(self, path: str, body: dict[str, Any], role: str = "operator") -> dict[str, Any]:
        answer = self.api.post(path, json=body, headers=self.headers(role))
        assert answer.status_code == 202, answer.json()
        result: dict[str, Any] = answer.json()
        return result

    def subscribe(self, plan: str = "basic-monthly", pm: str = "pm_card_visa", **customer: Any) -> dict[str, Any]:
        who = {"id": f"cus_{uuid.uuid4().hex[:10]}", "email": "anna@example.ie", "country": "IE", **customer}
        return self.post("/v1/subscriptions", {"customer": who, "plan": plan, "payment_method": pm})

    def get(self, subscription_id: str) -> dict[str, Any]:
        answer = self.api.get(f"/v1/subscriptions/{subscription_id}", headers=self.headers("viewer"))
        assert answer.status_code == 200, answer.json()
        result: dict[str, Any] = answer.json()
        return result

    def job(self, job_id: str) -> Job:
        with self.c.db.connect() as conn:
            return job_repo.get(conn, job_id)

    def receive(self) -> list[dict[str, Any]]:
        """Every message on subscriptions.fifo now (received and deleted), as envelope dicts."""
        sqs = self.c.sqs
        url = sqs.get_queue_url(QueueName=f"{self.c.settings.queue_prefix}subscriptions.fifo")["QueueUrl"]
        found: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                return found
            for m in messages:
                found.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def work(self) -> list[Job]:
        """Run every queued subscription job to its resting point (as a worker would), in queue order."""
        done = []
        for envelope in self.receive():
            done.append(self.c.run_job("subscription", envelope))
        return done

    def schedulers(self, now: datetime, count: int = 2) -> list[str]:
        """``count`` renewal passes at ``now`` running at the same moment (threads released by a barrier)."""
        barrier = threading.Barrier(count)
        reports: list[str] = []

        def one() -> None:
            barrier.wait()
            reports.append(self.c.build(renewals.run, now=now))

        threads = [threading.Thread(target=one) for _ in range(count)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return reports

    def sim(self, **knobs: Any) -> None:
        assert httpx.post(f"{self.sandbox.base_url}/_sim/config", json=knobs).status_code == 200

    def intents(self, job_ids: set[str]) -> list[dict[str, Any]]:
        data = httpx.get(f"{self.sandbox.base_url}/_sim/payment_intents").json()["data"]
        return [pi for pi in data if (pi.get("metadata") or {}).get("job_id") in job_ids]

    def invoices(self) -> list[sa.RowMapping]:
        with self.c.db.connect() as conn:
            return list(
                conn.execute(
                    sa.select(invoices)
                    .where(invoices.c.seller == self.c.settings.seller.vat_id)
                    .order_by(invoices.c.year, invoices.c.sequence)
                )
                .mappings()
                .all()
            )


@pytest.fixture
def world(payment_settings, stripe_sim) -> World:  # type: ignore[no-untyped-def]
    from config.settings import SellerSettings
    from engine.adapters.s3 import ensure_buckets
    from engine.broker.queues import provision
    from engine.ingest.app import create_app
    from engine.runtime.endpoints import resolve_endpoints

    seller = SellerSettings(country="IE", vat_id=f"IE{uuid.uuid4().hex[:8].upper()}")
    settings = payment_settings.model_copy(update={"seller": seller})
    c = Container(settings=settings, endpoints=resolve_endpoints(settings))
    provision(c.sqs, settings.queue_prefix, c.queues)
    ensure_buckets(c.s3, settings)
    # The database is shared by this xdist worker's tests and the scheduler sees every subscription in it: end the
    # earlier tests' subscriptions so simulated time here renews only this test's.
    with c.db.begin() as conn:
        conn.execute(subscriptions.update().where(subscriptions.c.status != "canceled").values(status="canceled"))
    return World(c, TestClient(create_app(c)), stripe_sim)
