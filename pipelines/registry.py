"""Every job kind of the engine, in one list.

The ingest (each kind's routes), the queue catalogue, the actors (one per kind), the scheduler (each kind's
tasks), the CLI and the DLQ replay planner all read :data:`JOB_KINDS`.  Adding a job kind is one package under
``pipelines/`` that declares ``KIND`` (``engine/jobs/kind.py: JobKind``), one line here, and the migration that
adds its name to the ``jobs_kind_known`` check constraint (and to ``engine/db/tables.py: JOB_KINDS``).
"""

from __future__ import annotations

from engine.broker.queues import QueueCatalogue
from engine.jobs.kind import JobKind
from pipelines.payment.kind import KIND as PAYMENT
from pipelines.refund.kind import KIND as REFUND
from pipelines.report.kind import KIND as REPORT
from pipelines.settlement.kind import KIND as SETTLEMENT
from pipelines.subscription.kind import KIND as SUBSCRIPTION
from pipelines.webhook.kind import KIND as WEBHOOK

JOB_KINDS: tuple[JobKind, ...] = (PAYMENT, REFUND, SUBSCRIPTION, SETTLEMENT, WEBHOOK, REPORT)

#: The engine's queues: each kind's work queue, in the order above, then ``notifications``.
CATALOGUE = QueueCatalogue.of(kind.queue for kind in JOB_KINDS)
