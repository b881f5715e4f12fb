"""One declaration per job kind: the registry is what the catalogue, the actors, the tables, the scheduler and the
container read, and a factory naming something the container does not provide stops the process at start."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from config.settings import Settings
from engine.broker.queues import work_queue
from engine.db.tables import JOB_KINDS as TABLE_KINDS
from engine.jobs.job import Job
from engine.jobs.kind import JobKind, Lazy, Task
from engine.jobs.pipeline import StageResult
from engine.ops.dlq.plan import plan_for
from engine.ops.scheduler import TASKS, tasks_of
from engine.runtime.container import PROVIDERS, Container, UnknownDependency, bootstrap
from engine.runtime.endpoints import Endpoints, NothingRunningError
from pipelines.payment.kind import KIND as PAYMENT
from pipelines.registry import CATALOGUE, JOB_KINDS
from pipelines.subscription.kind import KIND as SUBSCRIPTION
from pipelines.webhook.context import CHARGING_KINDS
from pipelines.webhook.payment_intent import BEFORE_CHARGE


def _container(**kinds: object) -> Container:
    endpoints = Endpoints(
        database_url=None, sqs_endpoint_url=None, s3_endpoint_url=None, redis_url=None, stripe_api_base=None,
        stripe_api_key=None, aws_region="eu-west-1", embedded_aws=False,
    )  # fmt: skip
    return Container(settings=Settings(), endpoints=endpoints, **kinds)  # type: ignore[arg-type]


def test_the_registry_is_what_the_tables_the_catalogue_and_the_actors_know() -> None:
    names = tuple(kind.name for kind in JOB_KINDS)
    assert names == TABLE_KINDS  # the jobs_kind_known constraint (migration 0001) lists the same, in this order
    assert [spec.base for spec in CATALOGUE] == [kind.queue.base for kind in JOB_KINDS] + ["notifications"]
    assert [kind.actor_name for kind in JOB_KINDS] == [f"process_{name}" for name in names]
    assert [task.name for task in TASKS] == [
        "dlq-sweep", "reconciler", "queue-gauges", "idempotency-purge", "outbox-purge", "stripe-reconcile",
        "audit-seal", "audit-ship",
        "stripe-janitor", "credit-notes", "subscription-renewals", "ecb-rates",
    ]  # fmt: skip


def test_one_actor_per_kind_on_its_queue() -> None:
    previous = dramatiq.broker.global_broker
    dramatiq.set_broker(StubBroker())
    try:
        import actors  # on first import, the package declares its actors on the global (here: stub) broker
    finally:
        dramatiq.broker.global_broker = previous
    declared = [actors.ACTORS[kind.name] for kind in JOB_KINDS]
    assert [(a.actor_name, a.queue_name) for a in declared] == [
        ("process_payment", "payments"),
        ("process_refund", "refunds"),
        ("process_subscription", "subscriptions"),
        ("process_settlement", "settlements"),
        ("process_webhook", "webhooks"),
        ("process_report", "reports"),
    ]


def test_every_factory_of_every_kind_names_providers_only() -> None:
    _container().check_kinds()
    assert {"db", "stripe", "settings", "velocity", "fraud_rules", "plans", "clock", "queues"} <= PROVIDERS
    assert all(name in dir(Container) or name in Container.__dataclass_fields__ for name in PROVIDERS)


def test_a_resumed_payment_restarts_from_the_stage_before_the_charge() -> None:
    # A subscription charge parked for 3-D Secure is resumed the same way (pipelines/webhook/payment_intent.py).
    assert {PAYMENT.name, SUBSCRIPTION.name} == set(CHARGING_KINDS)
    for kind in (PAYMENT, SUBSCRIPTION):
        names = kind.stage_names
        assert names[names.index("charge") - 1] == BEFORE_CHARGE, kind.name


@dataclass
class NeedsAList:
    sanctions_list: frozenset[str]
    name: str = "screen"

    def run(self, job: Job) -> StageResult:  # pragma: no cover - never built
        return StageResult()


def test_a_stage_naming_an_unknown_dependency_fails_at_start_with_its_name() -> None:
    kind = dataclasses.replace(PAYMENT, stages=(*PAYMENT.stages, NeedsAList))
    with pytest.raises(
        UnknownDependency, match=r"job kind 'payment', stage 'screen': .*NeedsAList needs 'sanctions_list'"
    ):
        _container(kinds=(kind,)).check_kinds()
    with pytest.raises(UnknownDependency, match="needs 'sanctions_list'"):
        _container().build(NeedsAList)
    with pytest.raises(UnknownDependency):
        bootstrap(Settings(), kinds=(kind,))


def test_build_takes_given_values_then_providers_and_keeps_defaults() -> None:
    c = _container()

    def factory(settings: Settings, extra: int, default: str = "kept") -> tuple[Settings, int, str]:
        return settings, extra, default

    assert c.build(factory, extra=3) == (c.settings, 3, "kept")
    assert c.job_kind("refund").name == "refund"


def test_a_kind_whose_queue_is_declared_for_another_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="declared for 'payment'"):
        dataclasses.replace(PAYMENT, name="refund")


@dataclass
class RenderStage:
    settings: Settings
    name: str = "render"

    def run(self, job: Job) -> StageResult:  # pragma: no cover - never run here
        return StageResult(status="succeeded")


def _statements(now: object, db: object) -> str:  # pragma: no cover - never run here
    return "nothing to do"


STATEMENT = JobKind(
    name="statement",
    queue=work_queue("statements", "statement"),
    validate=dict,
    stages=(RenderStage,),
    tasks=(Task("statements", 60.0, _statements),),
)


def test_a_new_kind_in_the_list_reaches_every_reader() -> None:
    kinds = (*JOB_KINDS, STATEMENT)
    c = _container(kinds=kinds)
    c.check_kinds()
    assert c.queues.resolve("statements.fifo").spec is STATEMENT.queue
    assert c.queues[-1].base == "notifications"
    assert [t.name for t in tasks_of(kinds)][-1] == "statements"
    job = Job.accepted(kind="statement", queue="statements.fifo", idempotency_scope="s", group_id="g", request={})
    job.status = "dead_lettered"
    assert plan_for(job, kinds=kinds).action == "resume"
    broker = StubBroker()
    previous = dramatiq.broker.global_broker
    dramatiq.set_broker(broker)
    try:
        from actors import declare

        actor = declare(STATEMENT)
    finally:
        dramatiq.broker.global_broker = previous
    assert (actor.actor_name, actor.queue_name) == ("process_statement", "statements")


def test_a_lazy_parameter_gets_the_provider_unbuilt() -> None:
    def factory(broker: Lazy[Any]) -> Lazy[Any]:
        return broker

    lazy = _container().build(factory)  # no SQS anywhere: building the broker now would raise
    with pytest.raises(NothingRunningError, match="not reachable"):
        lazy()


def test_the_ingest_starts_with_only_a_database_configured(tmp_path: Path) -> None:
    from engine.ingest.app import create_app

    endpoints = Endpoints(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", sqs_endpoint_url=None, s3_endpoint_url=None,
        redis_url=None, stripe_api_base=None, stripe_api_key=None, aws_region="eu-west-1", embedded_aws=True,
    )  # fmt: skip
    app = create_app(Container(settings=Settings(data_dir=tmp_path), endpoints=endpoints))
    paths = set(app.openapi()["paths"])
    assert {"/v1/payments", "/v1/refunds", "/v1/settlements", "/v1/subscriptions", "/webhooks/stripe"} <= paths
