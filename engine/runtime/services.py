"""The worker side of the object graph: gateways, pipelines and runners, built once per worker process.

Actors stay thin: they hand the envelope to :meth:`Services.run_job`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from typing import Any

from engine.broker.envelope import Envelope
from engine.broker.queues import spec_for_kind
from engine.db import jobs as job_repo
from engine.errors import PoisonError
from engine.jobs.job import Job
from engine.jobs.pipeline import PipelineRunner
from engine.runtime.container import Container, bootstrap

log = logging.getLogger(__name__)

#: Job kind → the module that handles it (``validate(data) -> dict`` and ``runner(services) -> PipelineRunner``).
#: A new pipeline registers here with one line.
KIND_HANDLERS: dict[str, str] = {
    "payment": "pipelines.payment.kind",
    "refund": "pipelines.refund.kind",
    "settlement": "pipelines.settlement.kind",
    "subscription": "pipelines.subscription.kind",
    "webhook": "pipelines.webhook.kind",
}


class Services:
    """Everything a worker needs, built lazily from one :class:`Container`."""

    def __init__(self, container: Container) -> None:
        self.c = container
        self._runners: dict[str, PipelineRunner] = {}
        self._lock = threading.Lock()

    @functools.cached_property
    def stripe(self) -> Any:
        from engine.adapters.stripe_gateway import StripeGateway

        e = self.c.endpoints.require("stripe")
        assert e.stripe_api_key is not None
        return StripeGateway(
            e.stripe_api_key,
            e.stripe_api_base,
            max_network_retries=self.c.settings.stripe.max_network_retries,
            timeout_seconds=self.c.settings.stripe.timeout_seconds,
            redis_client=self.redis_or_none(),
            redis_prefix=self.c.redis_prefix,
        )

    def redis_or_none(self) -> Any:
        """The Redis client, or None when Redis is neither configured nor running."""
        try:
            return self.c.redis
        except Exception:
            return None

    @functools.cached_property
    def notifier(self) -> Any:
        from engine.adapters.notifier import Notifier

        m = self.c.settings.merchant
        secret = m.webhook_secret.get_secret_value() if m.webhook_secret else None
        return Notifier(self.redis_or_none(), self.c.redis_prefix, m.webhook_url, secret)

    def cross_border_b2c_eur_cents(self) -> int:
        """The seller's cross-border EU B2C sales this and last calendar year, in euro cents (OSS threshold).

        Counts succeeded EUR payments to consumers in another state; other currencies would need a rate of
        exchange (documented limitation).
        """
        import sqlalchemy as sa

        query = sa.text(
            """
            SELECT coalesce(sum((result->'amounts'->>'total')::bigint), 0) FROM jobs
            WHERE kind = 'payment' AND status = 'succeeded'
              AND result->'amounts'->>'currency' = 'eur'
              AND request->'customer'->>'country' <> :seller
              AND coalesce(request->'customer'->>'type', 'consumer') = 'consumer'
              AND created_at >= date_trunc('year', now()) - interval '1 year'
            """
        )
        with self.c.db.connect() as conn:
            return int(conn.execute(query, {"seller": self.c.settings.seller.country}).scalar_one())

    def kind(self, kind: str) -> Any:
        """The handler module of a job kind (``validate(data)``, ``runner(services)``).

        Raises :class:`PoisonError` for a kind this engine does not process.
        """
        target = KIND_HANDLERS.get(kind)
        if target is None:
            raise PoisonError(f"no pipeline for jobs of kind {kind!r}")
        return importlib.import_module(target)

    def runner_for(self, kind: str) -> PipelineRunner:
        """The runner of a kind's pipeline, built once per process."""
        with self._lock:
            runner = self._runners.get(kind)
            if runner is None:
                runner = self._runners[kind] = self.kind(kind).runner(self)
            return runner

    def ensure_job(self, envelope: Envelope) -> Job:
        """The job an envelope is about: its row, or a new one for a message an upstream system enqueued directly.

        Raises :class:`PoisonError` when the envelope's data is not a valid request for its kind.
        """
        if envelope.job_id:
            with self.c.db.connect() as conn:
                try:
                    return job_repo.get(conn, envelope.job_id)
                except job_repo.JobNotFound:
                    pass
        data = self._validated(envelope)
        spec = spec_for_kind(envelope.kind)
        assert spec is not None
        customer = data.get("customer", {}).get("id") if isinstance(data.get("customer"), dict) else None
        draft = Job.accepted(
            job_id=envelope.job_id,
            kind=envelope.kind,
            queue=spec.name(""),
            idempotency_scope=envelope.idempotency_scope,
            group_id=envelope.group_id or customer or envelope.idempotency_scope,
            request=data,
            customer_id=customer,
            correlation_id=envelope.correlation_id,
        )
        with self.c.db.begin() as conn:
            job = job_repo.insert_if_absent(conn, draft)
        log.info("job %s created on first sight of message %s", job.id, envelope.message_id, extra={"job_id": job.id})
        return job

    def _validated(self, envelope: Envelope) -> dict[str, Any]:
        data: dict[str, Any] = self.kind(envelope.kind).validate(envelope.data)
        return data

    def run_job(self, kind: str, envelope_dict: dict[str, Any]) -> Job:
        """Run the job an envelope carries to its next resting point."""
        envelope = Envelope.model_validate(envelope_dict)
        job = self.ensure_job(envelope)
        return self.runner_for(kind).run(job.id)


@functools.cache
def services() -> Services:
    """The process-wide services (built on first use, after the broker is installed)."""
    return Services(bootstrap())
