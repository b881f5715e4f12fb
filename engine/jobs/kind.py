"""A job kind, declared once: its name, queue, request check, stages, runner, routes and scheduler tasks.

Each kind's package declares ``KIND`` in ``pipelines/<kind>/kind.py`` and ``pipelines/registry.py: JOB_KINDS``
lists them.  Everything that needs to know the kinds reads that list: the ingest (each kind's routes), the queue
catalogue, the actors (one per kind), the scheduler (each kind's tasks), the CLI and the DLQ replay planner.

Stages, the runner, the routes and the tasks are *factories*: callables whose parameters are named after the
container's providers (``db``, ``stripe``, ``settings``…; ``engine/runtime/container.py``).  The container builds
them (``Container.build``), so a stage says what it needs by naming it, and a name the container does not provide
stops the process at start.  A stage factory also carries the stage's ``name`` (a class attribute of the stage
class), so the stage list can be read without building anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from engine.broker.envelope import default_actor_for_kind
from engine.broker.queues import QueueSpec
from engine.jobs.pipeline import PipelineRunner

#: A callable whose parameters are provider names (plus, for some, values the caller gives by name).
Factory = Callable[..., Any]
T = TypeVar("T")


class Lazy(Generic[T]):
    """A provider handed over unbuilt: calling it returns the provider, built then (once, by the container).

    A factory that runs before every part of the stack need be reachable annotates such a parameter
    ``Lazy[...]`` (``s3: Lazy[Any]``): the ingest's routes are built at start, but the ingest must start without
    SQS or S3 and say so in ``/health``, so its routes reach for them per request.
    """

    __slots__ = ("_get",)

    def __init__(self, get: Callable[[], T]) -> None:
        self._get = get

    def __call__(self) -> T:
        return self._get()


@dataclass(frozen=True)
class Task:
    """A periodic task of the scheduler.  ``run``'s parameters are provider names and ``now`` (the moment of the
    pass, which ``payments scheduler --once --now`` may set); it returns a one-line report."""

    name: str
    interval_seconds: float
    run: Callable[..., str]


@dataclass(frozen=True)
class EffectReplay:
    """How ``payments dlq replay`` explains a job of this kind around the stage that makes its external effect
    (``engine/ops/dlq/plan.py``).

    Before that stage the plan is named after it (``charge``), once it is done ``resume_after_{stage}``, and when
    only the last stage is left ``{last}_only``.  ``progress_key`` is the stage's progress note and ``ref_key`` the
    id of what it made, in its output or in the note.
    """

    stage: Factory
    before: str
    reached: str
    after: str
    last_left: str
    progress_key: str
    ref_key: str


@dataclass(frozen=True)
class JobKind:
    """One kind of job (``jobs.kind``) and everything the engine needs to accept, queue and run it.

    ``validate`` turns an upstream-enqueued message's data into the normalised request and raises
    :class:`engine.errors.PoisonError` when it is invalid.  ``stages`` are the pipeline's stage factories in order;
    ``runner`` is built with ``pipeline`` given (:class:`PipelineRunner` or a subclass).  ``routes`` builds the
    kind's ingest router, ``tasks`` are its scheduler tasks, ``replay`` (optional) how a DLQ replay meets its
    external effect.
    """

    name: str
    queue: QueueSpec
    validate: Callable[[dict[str, Any]], dict[str, Any]]
    stages: tuple[Factory, ...]
    runner: Factory = PipelineRunner
    routes: Factory | None = None
    tasks: tuple[Task, ...] = ()
    replay: EffectReplay | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.queue.kind != self.name:
            raise ValueError(
                f"job kind {self.name!r}: its queue {self.queue.base!r} is declared for {self.queue.kind!r}"
            )
        names = self.stage_names
        if len(set(names)) != len(names):
            raise ValueError(f"job kind {self.name!r}: two stages share a name in {names}")
        if self.replay is not None and stage_name(self.replay.stage) not in names:
            raise ValueError(f"job kind {self.name!r}: its replay stage is not one of its stages {names}")

    @property
    def actor_name(self) -> str:
        """The Dramatiq actor that runs this kind's jobs (``process_payment``): what an envelope without ``actor``
        names (:func:`engine.broker.envelope.default_actor_for_kind`)."""
        return default_actor_for_kind(self.name)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The pipeline's stage names in order (each stage's recovery point)."""
        return tuple(stage_name(factory) for factory in self.stages)


def stage_name(factory: Factory) -> str:
    """The name of the stage a factory builds.  Raises :class:`TypeError` for a factory without a ``name``."""
    name = getattr(factory, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"stage factory {factory!r} has no name (give the stage class a `name` attribute)")
    return name
