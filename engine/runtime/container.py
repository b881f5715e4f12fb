"""The composition root: the one place that builds the object graph of a process.

settings → endpoints → adapters (database, SQS, S3, Redis, broker, Stripe gateway, notifier, velocity counter,
clock) and the data files the engine loads once (fraud rules, VAT rates, plans) → the job kinds' stages, runners,
routes and scheduler tasks.

Everything is a *provider*: an attribute named in :data:`PROVIDERS`, created lazily on first use (so a command that
only needs SQS never connects to PostgreSQL) and once per container.  The kinds' factories (``engine/jobs/kind.py``)
name the providers they need as parameters and :meth:`Container.build` calls them with those — the style of
cosmicpython's ``bootstrap.py``.  :func:`bootstrap` checks every kind's factories against the providers first, so
a misspelt dependency stops the process at start with :class:`UnknownDependency`.

Tests build the same root with their own settings (``tests/fixtures/services.py``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from config.settings import Settings, get_settings
from engine.broker.envelope import Envelope
from engine.broker.queues import QueueCatalogue
from engine.errors import PaymentsError, PoisonError
from engine.jobs.attempts import run_counted
from engine.jobs.intake import job_for
from engine.jobs.job import Job
from engine.jobs.kind import Factory, JobKind, Lazy, stage_name
from engine.jobs.pipeline import Pipeline, PipelineRunner
from engine.runtime.endpoints import Endpoints, NothingRunningError, resolve_endpoints
from pipelines.registry import JOB_KINDS

if TYPE_CHECKING:
    import redis
    import sqlalchemy as sa

    from engine.adapters.auth import TokenVerifier
    from engine.adapters.notifier import Notifier
    from engine.adapters.stripe_gateway import StripeGateway
    from engine.broker.broker import SQSBroker
    from engine.domain.fraud import FraudRules, VelocityCounter
    from engine.domain.plans import PlanCatalogue
    from engine.domain.vat import VatRates
    from engine.ingest.accept import JobAcceptor
    from engine.ingest.idempotency import IdempotencyStore

log = logging.getLogger(__name__)
T = TypeVar("T")

#: What a factory may name as a parameter (docs/architecture.md lists what each is).
PROVIDERS: frozenset[str] = frozenset(
    {
        "settings",
        "endpoints",
        "kinds",
        "queues",
        "db",
        "reports_db",
        "sqs",
        "s3",
        "redis",
        "redis_prefix",
        "broker",
        "stripe",
        "stripe_or_none",
        "notifier",
        "velocity",
        "fraud_rules",
        "plans",
        "vat_rates",
        "clock",
        "verifier",
        "idempotency",
        "acceptor",
        "build",
        "container",
    }
)


class UnknownDependency(PaymentsError, TypeError):
    """A factory names a parameter that is neither a provider, nor given by its caller, nor defaulted."""


@dataclass
class Container:
    """The providers of one process.  A provider that needs a part of the stack raises
    :class:`engine.runtime.endpoints.NothingRunningError` when that part is neither configured nor running."""

    PROVIDERS: ClassVar[frozenset[str]] = PROVIDERS

    settings: Settings
    endpoints: Endpoints
    #: The job kinds this process serves (``pipelines/registry.py: JOB_KINDS`` unless a caller gives others).
    kinds: tuple[JobKind, ...] = JOB_KINDS
    _runners: dict[str, PipelineRunner] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- the container itself --------------------------------------------------------------------------------

    @property
    def container(self) -> Container:
        """This container (for engine-level tasks that take it whole; stages name what they need)."""
        return self

    # -- adapters ---------------------------------------------------------------------------------------------

    @functools.cached_property
    def queues(self) -> QueueCatalogue:
        """The queue catalogue: each kind's work queue, then ``notifications``."""
        return QueueCatalogue.of(kind.queue for kind in self.kinds)

    @functools.cached_property
    def db(self) -> sa.Engine:
        from engine.db.engine import get_engine

        url = self.endpoints.require("database").database_url
        assert url is not None
        return get_engine(url, self.settings.database.pool_size)

    @functools.cached_property
    def reports_db(self) -> sa.Engine:
        """The engine reports read through: the read replica (``PAYMENTS_DATABASE_REPLICA_URL``) when set, else the
        primary, with a small read-only pool of its own (``engine/reports/database.py``)."""
        from engine.reports.database import reports_engine, reports_url

        return reports_engine(reports_url(self.settings, self.endpoints))

    @functools.cached_property
    def sqs(self) -> Any:
        from engine.broker.client import make_sqs_client

        return make_sqs_client(self.endpoints.require("sqs"))

    @functools.cached_property
    def s3(self) -> Any:
        from engine.adapters.s3 import make_s3_client

        return make_s3_client(self.endpoints.require("s3"))

    @functools.cached_property
    def redis(self) -> redis.Redis:
        from engine.adapters.redis_client import make_redis

        url = self.endpoints.require("redis").redis_url
        assert url is not None
        return make_redis(url)

    def redis_or_none(self) -> Any:
        """The Redis client, or None when Redis is neither configured nor running."""
        try:
            return self.redis
        except Exception:
            return None

    @property
    def redis_prefix(self) -> str:
        from engine.adapters.redis_client import redis_prefix

        return redis_prefix(self.settings)

    @functools.cached_property
    def broker(self) -> SQSBroker:
        """The broker producers send with (the ingest, the scheduler, a worker's re-sends)."""
        from engine.broker.bootstrap import build_broker
        from engine.db.dead_letters import SqlDeadLetterSink

        broker = build_broker(self.settings, self.endpoints, self.queues, SqlDeadLetterSink(self.db))
        # Producers send to every catalogue queue; declaring costs no SQS call.
        for spec in self.queues:
            broker.declare_queue(spec.base)
        return broker

    @functools.cached_property
    def stripe(self) -> StripeGateway:
        from engine.adapters.stripe_gateway import StripeGateway
        from engine.adapters.stripe_rate_limit import StripeRateLimiter

        e = self.endpoints.require("stripe")
        assert e.stripe_api_key is not None
        s = self.settings.stripe
        shared = self.redis_or_none()
        limiter = None
        # Stripe's limits bind a configured key (Stripe, or a server standing in for it); the bundled sandbox that
        # `payments run` starts without a key enforces none unless its knobs say so, and the bench measures it flat out.
        configured = s.api_key is not None
        if configured and shared is not None and (s.rate_limit_per_account > 0 or s.rate_limit_per_endpoint > 0):
            limiter = StripeRateLimiter(
                shared,
                e.stripe_api_key,
                prefix=self.redis_prefix,
                per_account=s.rate_limit_per_account,
                per_endpoint=s.rate_limit_per_endpoint,
            )
        return StripeGateway(
            e.stripe_api_key,
            e.stripe_api_base,
            max_network_retries=s.max_network_retries,
            timeout_seconds=s.timeout_seconds,
            redis_client=shared,
            redis_prefix=self.redis_prefix,
            rate_limiter=limiter,
        )

    @property
    def stripe_or_none(self) -> StripeGateway | None:
        """The Stripe gateway, or None when Stripe is neither configured nor running."""
        try:
            return self.stripe
        except NothingRunningError:
            return None

    @functools.cached_property
    def notifier(self) -> Notifier:
        from engine.adapters.notifier import Notifier

        m = self.settings.merchant
        secret = m.webhook_secret.get_secret_value() if m.webhook_secret else None
        url = m.webhook_url.get_secret_value() if m.webhook_url else None
        return Notifier(self.redis_or_none(), self.redis_prefix, url, secret)

    @functools.cached_property
    def velocity(self) -> VelocityCounter:
        """Velocity windows for the fraud rules: in Redis (shared by every worker), else in this process."""
        from engine.adapters.velocity import MemoryVelocityCounter, RedisVelocityCounter

        client = self.redis_or_none()
        return RedisVelocityCounter(client, self.redis_prefix) if client else MemoryVelocityCounter()

    @property
    def clock(self) -> Callable[[], datetime]:
        """The time now, in UTC."""
        return _utc_now

    # -- data files, loaded once ------------------------------------------------------------------------------

    @functools.cached_property
    def fraud_rules(self) -> FraudRules:
        """``config/fraud_rules.json``.  Raises what :func:`engine.domain.fraud.load_fraud_rules` raises."""
        from engine.domain.fraud import load_fraud_rules

        return load_fraud_rules()

    @functools.cached_property
    def vat_rates(self) -> VatRates:
        """``config/vat_rates.json``.  Raises :class:`engine.domain.vat.VatDataError` when it is malformed."""
        from engine.domain.vat import shipped_vat_rates

        return shipped_vat_rates()

    @functools.cached_property
    def plans(self) -> PlanCatalogue:
        """The plans catalogue.  Raises :class:`engine.domain.plans.PlanCatalogueError` when it is broken."""
        from engine.domain.plans import default_plans

        return default_plans()

    # -- the ingest's shared parts ----------------------------------------------------------------------------

    @functools.cached_property
    def verifier(self) -> TokenVerifier:
        from engine.adapters.auth import TokenVerifier

        return TokenVerifier(self.settings)

    @functools.cached_property
    def idempotency(self) -> IdempotencyStore:
        from engine.ingest.idempotency import IdempotencyStore

        return IdempotencyStore(self.db, self.redis_or_none(), self.redis_prefix, self.settings.idempotency.ttl_seconds)

    @functools.cached_property
    def acceptor(self) -> JobAcceptor:
        from engine.ingest.accept import JobAcceptor

        # The broker on first send: the ingest starts (and reports in /health) without SQS.
        return JobAcceptor(self.db, Lazy(lambda: self.broker), self.idempotency, self.queues)

    # -- building by name -------------------------------------------------------------------------------------

    def build(self, factory: Callable[..., T], **given: Any) -> T:
        """Call ``factory`` with each parameter taken from ``given`` or else from the provider of that name (a
        parameter with a default that is neither keeps its default; one annotated ``Lazy[...]`` gets the provider
        unbuilt, :class:`engine.jobs.kind.Lazy`).  ``build`` is itself a provider: a factory
        that wraps another one builds it with it (``pipelines/subscription/steps.py``).

        Raises :class:`UnknownDependency` for a parameter it cannot fill, and whatever building a provider raises.
        """
        kwargs: dict[str, Any] = {}
        for name, parameter in _parameters(factory):
            if name in given:
                kwargs[name] = given[name]
            elif name in PROVIDERS and _is_lazy(parameter):
                kwargs[name] = Lazy(functools.partial(getattr, self, name))
            elif name in PROVIDERS:
                kwargs[name] = getattr(self, name)
            elif parameter.default is inspect.Parameter.empty:
                raise UnknownDependency(_unknown(factory, name))
        return factory(**kwargs)

    def check(self, factory: Factory, given: Iterable[str] = ()) -> None:
        """Check, without building anything, that :meth:`build` can fill every parameter of ``factory`` (and
        of the factory it wraps, if any).  Raises :class:`UnknownDependency`."""
        names = set(given)
        for name, parameter in _parameters(factory):
            if name not in names and name not in PROVIDERS and parameter.default is inspect.Parameter.empty:
                raise UnknownDependency(_unknown(factory, name))
        inner = getattr(factory, "inner", None)
        if inner is not None and callable(inner):
            self.check(inner)

    def check_kinds(self) -> None:
        """:meth:`check` every factory of every kind.  Raises :class:`UnknownDependency` naming the kind."""
        for kind in self.kinds:
            parts: list[tuple[str, Factory, tuple[str, ...]]] = [
                (f"stage {stage_name(stage)!r}", stage, ()) for stage in kind.stages
            ]
            parts.append(("runner", kind.runner, ("pipeline",)))
            if kind.routes is not None:
                parts.append(("routes", kind.routes, ()))
            parts += [(f"task {task.name!r}", task.run, ("now",)) for task in kind.tasks]
            for what, factory, given in parts:
                try:
                    self.check(factory, given)
                except UnknownDependency as exc:
                    raise UnknownDependency(f"job kind {kind.name!r}, {what}: {exc}") from None

    def kind_uses(self, kind: JobKind, *providers: str) -> bool:
        """Whether a stage of ``kind`` (or the stage a wrapper builds) is built with one of ``providers``."""
        wanted = set(providers)
        for stage in kind.stages:
            factory: Factory | None = stage
            while factory is not None:
                if any(name in wanted for name, _ in _parameters(factory)):
                    return True
                inner = getattr(factory, "inner", None)
                factory = inner if callable(inner) else None
        return False

    # -- jobs -------------------------------------------------------------------------------------------------

    def job_kind(self, name: str) -> JobKind:
        """The kind named ``name``.  Raises :class:`PoisonError` for a kind this engine does not process."""
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise PoisonError(f"no pipeline for jobs of kind {name!r}")

    def pipeline(self, kind: JobKind) -> Pipeline:
        """The kind's pipeline, its stages built by name."""
        stages = []
        for factory in kind.stages:
            stage = self.build(factory)
            if stage.name != stage_name(factory):
                raise TypeError(f"stage factory {factory!r} named {stage_name(factory)!r} built {stage.name!r}")
            stages.append(stage)
        return Pipeline(kind.name, tuple(stages))

    def runner(self, kind: str) -> PipelineRunner:
        """The runner of a kind's pipeline, built once per container.  Raises :class:`PoisonError` for an unknown
        kind, and what building its stages raises (a broken plans catalogue, Stripe not configured…)."""
        with self._lock:
            runner = self._runners.get(kind)
            if runner is None:
                job_kind = self.job_kind(kind)
                runner = self._runners[kind] = self.build(job_kind.runner, pipeline=self.pipeline(job_kind))
            return runner

    def ensure_job(self, envelope: Envelope) -> Job:
        """The job an envelope is about (:func:`engine.jobs.intake.job_for`).  Raises :class:`PoisonError` when the
        envelope's data is not a valid request for its kind, or its kind is unknown."""
        return job_for(self.db, envelope, self.job_kind)

    def run_job(self, kind: str, envelope_dict: dict[str, Any]) -> Job:
        """Run the job an envelope carries to its next resting point (what each kind's actor does)."""
        envelope = Envelope.model_validate(envelope_dict)
        job = self.ensure_job(envelope)
        runner = self.runner(kind)
        # Only a failure of the job's own spends one of its attempts (engine/jobs/attempts.py).
        return run_counted(self.db, job.id, lambda: runner.run(job.id), max_attempts=self.settings.retry.max_attempts)


def bootstrap(settings: Settings | None = None, kinds: Iterable[JobKind] | None = None) -> Container:
    """The container for this process, from the settings and the running stack's runtime file.

    ``kinds`` replaces the registry's job kinds (the same names and queues with other stages, for a benchmark's
    baseline).  Raises :class:`UnknownDependency` when a kind's factory names something no provider gives.
    """
    s = settings or get_settings()
    container = Container(settings=s, endpoints=resolve_endpoints(s), kinds=tuple(kinds or JOB_KINDS))
    container.check_kinds()
    return container


_process: Container | None = None
_process_lock = threading.Lock()


def process_container() -> Container:
    """The container of this worker process: the one :func:`use_process_container` set, else one bootstrapped on
    first use (after the broker is installed)."""
    global _process
    with _process_lock:
        if _process is None:
            _process = bootstrap()
        return _process


def use_process_container(container: Container) -> None:
    """Make ``container`` the one this process's actors run jobs with (``payments worker`` does, at start)."""
    global _process
    with _process_lock:
        _process = container


def _parameters(factory: Callable[..., Any]) -> list[tuple[str, inspect.Parameter]]:
    """The parameters a factory can be given by name (``*args``/``**kwargs`` are not)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [(name, p) for name, p in inspect.signature(factory).parameters.items() if p.kind in named]


def _is_lazy(parameter: inspect.Parameter) -> bool:
    """Whether a parameter is annotated ``Lazy[...]`` (as text, the project's modules postponing annotations)."""
    annotation = parameter.annotation
    if isinstance(annotation, str):
        return annotation.startswith("Lazy[")
    return typing.get_origin(annotation) is Lazy


def _unknown(factory: Callable[..., Any], name: str) -> str:
    what = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    module = getattr(factory, "__module__", None) or type(factory).__module__
    known = ", ".join(sorted(PROVIDERS))
    return f"{module}.{what} needs {name!r}, which the container does not provide (providers: {known})"


def _utc_now() -> datetime:
    return datetime.now(UTC)
