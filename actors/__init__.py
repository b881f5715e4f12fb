"""Dramatiq actors: thin bindings of queues to pipeline runners.  Importing this package declares them all.

One actor per job kind of ``pipelines/registry.py`` (``process_payment`` on ``payments``…; the kind's
``actor_name`` on its queue), each handing its envelope to the process's container
(:meth:`engine.runtime.container.Container.run_job`), plus ``process_notification`` on the standard
``notifications`` queue (``actors/notifications.py``).
"""

from __future__ import annotations

from typing import Any

import dramatiq

from actors import notifications
from engine.jobs.kind import JobKind
from engine.runtime.container import process_container
from pipelines.registry import JOB_KINDS


def declare(kind: JobKind) -> dramatiq.Actor[[dict[str, Any]], None]:
    """The actor of ``kind``: run the job its envelope carries."""

    def process(envelope: dict[str, Any]) -> None:
        process_container().run_job(kind.name, envelope)

    process.__name__ = process.__qualname__ = kind.actor_name
    process.__doc__ = kind.description or f"Run the {kind.name} pipeline for the job this envelope carries."
    return dramatiq.actor(queue_name=kind.queue.base, actor_name=kind.actor_name)(process)


#: Job kind → its actor.
ACTORS: dict[str, dramatiq.Actor[[dict[str, Any]], None]] = {kind.name: declare(kind) for kind in JOB_KINDS}

__all__ = ["ACTORS", "declare", "notifications"]
