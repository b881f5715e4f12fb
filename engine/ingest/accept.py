"""Accepting a job: the idempotency check, one commit (job row + saved answer), then the message into SQS.

"Accepted means durable": the 202 is only answered once the job row is committed and SQS has the message.  If the
message cannot be sent, the job and the saved answer are removed again and the client gets 503 with Retry-After,
free to retry with the same key.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from engine.audit import hooks as audit
from engine.broker.envelope import Envelope, to_message
from engine.broker.queues import QueueCatalogue
from engine.db import jobs as job_repo
from engine.db.tables import jobs
from engine.errors import PaymentsError
from engine.ingest.errors import ApiError
from engine.ingest.idempotency import IdempotencyStore, SavedAnswer
from engine.jobs.job import Job
from engine.jobs.kind import Lazy

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def api_scope(client: str, key: str) -> str:
    """The idempotency scope of an API request: the client (JWT ``sub``) and its Idempotency-Key."""
    return f"api:{client}:{key}"


class JobAcceptor:
    """Creates jobs for the ingest routes: the job row in ``db``, the message through ``broker`` (built on first
    send) on the kind's queue in ``queues``, the answer kept in ``store``.  Build one per process (the container's
    ``acceptor``)."""

    def __init__(self, db: sa.Engine, broker: Lazy[Any], store: IdempotencyStore, queues: QueueCatalogue) -> None:
        self._db = db
        self._broker = broker
        self._store = store
        self._queues = queues

    def accept(
        self,
        *,
        client: str,
        key: str,
        request_hash: str,
        kind: str,
        data: dict[str, Any],
        group_key: str,
        customer_id: str | None,
        correlation_id: str | None,
        public: dict[str, Any] | None = None,
    ) -> SavedAnswer:
        """The answer for this request: a replay of the first answer, or 202 with a new job.

        Raises :class:`ApiError` 422 ``idempotency_key_reused``, 409 ``idempotency_key_in_use``, 503 ``unavailable``.
        """
        # The in-flight lock first: one database lookup per request instead of one before and one after it.
        if not self._store.acquire(client, key):
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry after it answered.",
                param="Idempotency-Key",
                error_type="idempotency_error",
            )
        try:
            saved = self._store.lookup(client, key, request_hash)
            if saved is not None:
                return saved
            return self._create(client, key, request_hash, kind, data, group_key, customer_id, correlation_id, public)
        finally:
            self._store.release(client, key)

    def _create(
        self,
        client: str,
        key: str,
        request_hash: str,
        kind: str,
        data: dict[str, Any],
        group_key: str,
        customer_id: str | None,
        correlation_id: str | None,
        public: dict[str, Any] | None,
    ) -> SavedAnswer:
        spec = self._queues.for_kind(kind)
        assert spec is not None, kind
        scope = api_scope(client, key)
        draft = Job.accepted(
            kind=kind,
            queue=spec.name(""),
            idempotency_scope=scope,
            group_id=group_key,
            request=data,
            customer_id=customer_id,
            correlation_id=correlation_id,
            public=public,
        )
        try:
            with self._db.begin() as conn:
                job = job_repo.insert(conn, draft)
                answer = SavedAnswer(202, job.view())
                if not self._store.save(conn, client, key, request_hash, job.id, answer):
                    raise _KeyTaken()
                audit.job_created(conn, actor=client, job=job, request_hash=request_hash)
        except _KeyTaken:
            # Another request with this key committed first (Redis lock unavailable): answer as it did.
            saved = self._store.lookup(client, key, request_hash)
            if saved is None:  # pragma: no cover - the row we collided with expired in between
                raise ApiError(503, "unavailable", "Try again.", retry_after=1) from None
            return saved
        except sa.exc.OperationalError as exc:
            raise ApiError(503, "unavailable", "The database is unavailable.", retry_after=RETRY_AFTER_SECONDS) from exc
        envelope = Envelope.new(
            kind=kind,
            data=data,
            idempotency_scope=scope,
            group_id=group_key,
            job_id=job.id,
            correlation_id=correlation_id,
        )
        try:
            self._broker().enqueue(to_message(envelope, spec.base))
        except Exception as exc:
            log.warning("could not enqueue job %s: %s", job.id, exc, extra={"job_id": job.id})
            self._undo(job.id, client, key)
            raise ApiError(
                503,
                "unavailable",
                "The job queue is unavailable; nothing was accepted.",
                retry_after=RETRY_AFTER_SECONDS,
            ) from exc
        log.info("accepted %s job %s", kind, job.id, extra={"job_id": job.id, "kind": kind})
        return answer

    def _undo(self, job_id: str, client: str, key: str) -> None:
        try:
            with self._db.begin() as conn:
                self._store.forget(conn, client, key)
                conn.execute(jobs.delete().where(jobs.c.id == job_id, jobs.c.status == "accepted"))
        except sa.exc.SQLAlchemyError:
            # The job stays accepted; the reconciler enqueues it later.  The client's retry replays the 202.
            log.exception("could not undo job %s after a failed enqueue", job_id)


class _KeyTaken(PaymentsError):
    pass
