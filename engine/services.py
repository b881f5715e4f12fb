"""The worker side of the object graph: gateways, pipelines and runners, built once per worker process.

Actors stay thin: they hand the envelope to :meth:`Services.run_job`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from pydantic import ValidationError

from engine.bootstrap import Container, bootstrap
from engine.broker.envelope import Envelope
from engine.broker.queues import spec_for_kind
from engine.db import jobs as job_repo
from engine.errors import PoisonError
from engine.jobs import Job, new_job_id
from engine.pipeline import PipelineRunner

log = logging.getLogger(__name__)


class Services:
    """Everything a worker needs, built lazily from one :class:`Container`."""

    def __init__(self, container: Container) -> None:
        self.c = container

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
            redis_client=self._redis_or_none(),
            redis_prefix=self.c.redis_prefix,
        )

    def _redis_or_none(self) -> Any:
        try:
            return self.c.redis
        except Exception:
            return None

    @functools.cached_property
    def notifier(self) -> Any:
        from engine.notifier import Notifier

        m = self.c.settings.merchant
        secret = m.webhook_secret.get_secret_value() if m.webhook_secret else None
        return Notifier(self._redis_or_none(), self.c.redis_prefix, m.webhook_url, secret)

    @functools.cached_property
    def payment_runner(self) -> PipelineRunner:
        from engine.adapters.velocity import MemoryVelocityCounter, RedisVelocityCounter
        from engine.domain.fraud import load_fraud_rules
        from pipelines.payment import ChargeStage, FraudStage, VatStage, payment_pipeline

        redis_client = self._redis_or_none()
        counter = RedisVelocityCounter(redis_client, self.c.redis_prefix) if redis_client else MemoryVelocityCounter()
        s = self.c.settings
        fraud = FraudStage(counter, load_fraud_rules(), self.stripe.card_country)
        vat = VatStage(s.seller.country, s.vat.oss, self._cross_border_b2c_eur_cents)
        charge = ChargeStage(self.stripe, self._note)
        return PipelineRunner(self.c.db, payment_pipeline(fraud, vat, charge))

    def _note(self, job_id: str, value: dict[str, Any]) -> None:
        with self.c.db.begin() as conn:
            job_repo.note(conn, job_id, "charge_progress", value)

    def _cross_border_b2c_eur_cents(self) -> int:
        import sqlalchemy as sa

        # Succeeded EUR payments taxed at the seller's rate for a customer in another state, or under OSS,
        # this and last calendar year (other currencies would need a rate of exchange: documented limitation).
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

    def runner_for(self, kind: str) -> PipelineRunner:
        if kind == "payment":
            return self.payment_runner
        raise PoisonError(f"no pipeline for jobs of kind {kind!r}")

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
        draft = Job(
            id=envelope.job_id or new_job_id(),
            kind=envelope.kind,
            status="accepted",
            stage=None,
            idempotency_scope=envelope.idempotency_scope,
            queue=spec.name(""),
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
        if envelope.kind == "payment":
            from engine.ingest.schemas import PaymentRequest

            try:
                request = PaymentRequest.model_validate(envelope.data)
            except ValidationError as exc:
                raise PoisonError(f"invalid payment request: {exc.errors()[0]['msg']}") from exc
            problems = request.semantic_errors()
            if problems:
                raise PoisonError(f"invalid payment request: {problems[0][0]}: {problems[0][1]}")
            return request.model_dump(mode="json", exclude_none=True)
        raise PoisonError(f"no pipeline for jobs of kind {envelope.kind!r}")

    def run_job(self, kind: str, envelope_dict: dict[str, Any]) -> Job:
        """Run the job an envelope carries to its next resting point."""
        envelope = Envelope.model_validate(envelope_dict)
        job = self.ensure_job(envelope)
        return self.runner_for(kind).run(job.id)


@functools.cache
def services() -> Services:
    """The process-wide services (built on first use, after the broker is installed)."""
    return Services(bootstrap())
