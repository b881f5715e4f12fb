"""Accepting a job: the idempotency check, then one commit — the job row, its saved 202 and its message (an outbox
row) — and the hand-off of the message to SQS by the outbox relay.

"Accepted means durable": the 202 is answered once that commit is done.  From then on the job is never deleted
and always reaches its queue: the relay (``engine/ops/outbox_relay.py``, a thread of the ingest process woken by
each commit, and of every worker) sends it with ``SendMessageBatch`` and keeps trying while SQS is down; the
reconciler re-sends a job that still made no progress.  Everything that could make the message invalid (headers,
the envelope) is checked before the commit, so nothing committed can fail later for a reason of the request.

A request that meets a job already recorded under its idempotency scope — a concurrent duplicate when the Redis
lock is unavailable, a retry after the lock expired, a key reused after its saved answer's TTL — is answered with
that job (or 422 ``idempotency_key_reused`` when the request differs), never a second job and never a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert

from engine.audit import hooks as audit
from engine.broker.envelope import Envelope
from engine.broker.queues import QueueCatalogue
from engine.db import accepted
from engine.db import jobs as job_repo
from engine.db.outbox import add_dispatches
from engine.db.tables import jobs
from engine.domain.merchant import DEFAULT_MERCHANT, tenant_client
from engine.errors import PaymentsError
from engine.ingest.errors import ApiError
from engine.ingest.idempotency import IdempotencyStore, SavedAnswer
from engine.jobs.job import Job
from engine.jobs.kind import Lazy

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def api_scope(client: str, key: str) -> str:
    """The idempotency scope of an API request: the client (JWT ``sub`` within its merchant,
    :func:`engine.domain.merchant.tenant_client`) and its Idempotency-Key.

    The client is length-prefixed, so no pair of (client, key) can spell another pair's scope (``a:b`` + ``k``
    and ``a`` + ``b:k`` differ).
    """
    return f"api:{len(client)}:{client}:{key}"


@dataclass(frozen=True)
class Submission:
    """One job a request asks for: what :meth:`JobAcceptor.accept` takes besides the client and key."""

    request_hash: str
    kind: str
    data: dict[str, Any]
    group_key: str
    customer_id: str | None
    correlation_id: str | None
    public: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Prepared:
    draft: Job
    envelope: dict[str, Any]
    queue: str


class JobAcceptor:
    """Creates jobs for the ingest routes: the job row, its saved answer (``store``) and its dispatch row in ``db``
    in one commit; the message goes to the kind's queue in ``queues`` through ``broker`` (built on first send).

    Build one per process (the container's ``acceptor``).  With a relay attached (:meth:`use_relay`, the ingest
    app does it at start) the message is sent by that relay's thread, batched with other requests'; without one
    (the CLI, tests) it is relayed in the caller's thread right after the commit, best effort.
    """

    def __init__(self, db: sa.Engine, broker: Lazy[Any], store: IdempotencyStore, queues: QueueCatalogue) -> None:
        self._db = db
        self._broker = broker
        self._store = store
        self._queues = queues
        self._relay: Any = None

    def use_relay(self, relay: Any) -> None:
        """Hand messages to ``relay`` (an :class:`engine.ops.outbox_relay.OutboxRelay`, running) from now on;
        ``None`` goes back to relaying in the caller's thread."""
        self._relay = relay

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
        merchant: str = DEFAULT_MERCHANT,
    ) -> SavedAnswer:
        """The answer for this request: a replay of the first answer, or 202 with a new job.

        ``client`` is the token's subject and ``merchant`` its merchant: the job belongs to that merchant, was
        created by that subject, and the Idempotency-Key is the subject's within the merchant (two merchants' keys
        never meet).

        Raises :class:`ApiError` 422 ``idempotency_key_reused``, 409 ``idempotency_key_in_use``, 400
        ``invalid_request`` (the message would be invalid), 503 ``unavailable`` (the database is down).
        """
        submission = Submission(request_hash, kind, data, group_key, customer_id, correlation_id, public)
        creator, client = client, tenant_client(merchant, client)
        # The in-flight lock first: a concurrent duplicate is answered 409 before it touches the database.
        if not self._store.acquire(client, key):
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry after it answered.",
                param="Idempotency-Key",
                error_type="idempotency_error",
            )
        try:
            prepared = self._prepare(client, key, submission, merchant, creator)
            answer, created = self._commit(client, key, submission, prepared)
        finally:
            self._store.release(client, key)
        if created:
            self._hand_off()
        return answer

    def accept_batch(
        self,
        *,
        client: str,
        key: str,
        request_hash: str,
        items: list[tuple[str, Submission] | ApiError],
        merchant: str = DEFAULT_MERCHANT,
    ) -> SavedAnswer:
        """Accept many jobs in one commit: ``items`` are ``(item key, submission)`` or the :class:`ApiError` that
        item already failed with.  The answer is 207 with one result per item, in order (``{"index", "status",
        "job"}`` or ``{"index", "status", "error"}``), saved under the batch's own ``key`` as one answer is.

        Each item is its own request with its own key (scope ``api_scope(client, item key)``): a replayed item, a
        key already used for the same payment, or one used for another (422 ``idempotency_key_reused``) is answered
        as ``POST /v1/payments`` would.  ``client`` and ``merchant`` as for :meth:`accept`.  Raises
        :class:`ApiError` 409 ``idempotency_key_in_use`` for the batch key, 422 ``idempotency_key_reused`` when it
        was used for another batch, 503 ``unavailable``.
        """
        creator, client = client, tenant_client(merchant, client)
        if not self._store.acquire(client, key):
            raise ApiError(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry after it answered.",
                param="Idempotency-Key",
                error_type="idempotency_error",
            )
        try:
            results: list[dict[str, Any] | None] = [None] * len(items)
            prepared: dict[int, tuple[str, Submission, _Prepared]] = {}
            seen: set[str] = set()
            for i, item in enumerate(items):
                if isinstance(item, ApiError):
                    results[i] = _error(i, item)
                    continue
                item_key, submission = item
                if item_key in seen:
                    results[i] = _error(
                        i,
                        ApiError(
                            422,
                            "validation_error",
                            "idempotency_key repeats an earlier item's.",
                            param=f"items.{i}.idempotency_key",
                        ),
                    )
                    continue
                seen.add(item_key)
                try:
                    prepared[i] = (item_key, submission, self._prepare(client, item_key, submission, merchant, creator))
                except ApiError as exc:
                    results[i] = _error(i, exc)
            answer, created = self._commit_batch(client, key, request_hash, results, prepared)
        finally:
            self._store.release(client, key)
        if created:
            self._hand_off()
        return answer

    def _commit_batch(
        self,
        client: str,
        key: str,
        request_hash: str,
        results: list[dict[str, Any] | None],
        prepared: dict[int, tuple[str, Submission, _Prepared]],
    ) -> tuple[SavedAnswer, bool]:
        try:
            with self._db.begin() as conn:
                saved = self._store.lookup(client, key, request_hash, conn)
                if saved is not None:
                    return saved, False
                created: list[tuple[Job, Submission]] = []
                dispatches: list[tuple[str, str, dict[str, Any]]] = []
                for i, (item_key, s, p) in prepared.items():
                    try:
                        item_saved = self._store.lookup(client, item_key, s.request_hash, conn)
                        if item_saved is None:
                            inserted = _insert_job(conn, p.draft)
                            if inserted is None:
                                item_saved = self._existing(conn, client, item_key, s, p.draft.idempotency_scope)
                            else:
                                job = inserted
                                item_saved = SavedAnswer(202, job.view())
                                self._store.save(conn, client, item_key, s.request_hash, job.id, item_saved)
                                created.append((job, s))
                                dispatches.append((job.id, p.queue, p.envelope))
                        results[i] = {"index": i, "status": item_saved.status, "job": item_saved.body}
                    except ApiError as exc:
                        results[i] = _error(i, exc)
                add_dispatches(conn, dispatches)
                answer = SavedAnswer(207, {"object": "list", "data": results})
                self._store.save(conn, client, key, request_hash, None, answer)
                # Last: the audit chain's head stays locked from here to the commit.
                for job, s in created:
                    audit.job_created(conn, actor=job.created_by or client, job=job, request_hash=s.request_hash)
        except sa.exc.OperationalError as exc:
            raise ApiError(503, "unavailable", "The database is unavailable.", retry_after=RETRY_AFTER_SECONDS) from exc
        log.info("accepted a batch of %d job(s), %d new", len(results), len(created))
        return answer, bool(created)

    def _prepare(self, client: str, key: str, s: Submission, merchant: str, creator: str) -> _Prepared:
        """The job row (of ``merchant``, created by the subject ``creator``) and its validated envelope, before
        anything is written.  Raises :class:`ApiError` 400."""
        spec = self._queues.for_kind(s.kind)
        assert spec is not None, s.kind
        scope = api_scope(client, key)
        draft = Job.accepted(
            kind=s.kind,
            queue=spec.name(""),
            idempotency_scope=scope,
            group_id=s.group_key,
            request=s.data,
            customer_id=s.customer_id,
            correlation_id=s.correlation_id,
            public=s.public,
            merchant_id=merchant,
            created_by=creator,
        )
        try:
            envelope = Envelope.new(
                kind=s.kind,
                data=s.data,
                idempotency_scope=scope,
                group_id=s.group_key,
                job_id=draft.id,
                correlation_id=s.correlation_id,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ApiError(
                400, "invalid_request", f"The job's message would be invalid: {field}: {first['msg']}"
            ) from exc
        return _Prepared(draft, envelope.to_arg(), spec.base)

    def _commit(self, client: str, key: str, s: Submission, p: _Prepared) -> tuple[SavedAnswer, bool]:
        """One transaction: job, saved answer, dispatch row and audit record (``engine/db/accepted.py``, two
        statements).  The answer and whether it created the job.

        No lookup comes first: a key used before has its job (the scope is the client and the key), so the job's
        insert finds it and writes nothing, and so does a live saved answer under the key; either rolls back and
        the answer is the saved one, the existing job's, or 422 (:meth:`_existing`)."""
        try:
            try:
                with self._db.begin() as conn:
                    job = accepted.insert_job(conn, p.draft)
                    if job is None:
                        raise _Collision()
                    answer = SavedAnswer(202, job.view())
                    recorded = accepted.record_acceptance(
                        conn,
                        client=client,
                        key=key,
                        request_hash=s.request_hash,
                        job_id=job.id,
                        status=answer.status,
                        body=answer.body,
                        expires_at=self._store.expiry(),
                        queue=p.queue,
                        envelope=p.envelope,
                        audit_body=audit.job_created_body(
                            actor=job.created_by or client, job=job, request_hash=s.request_hash
                        ),
                    )
                    if not recorded:
                        # A live answer under this key for another scope: a batch's key, or rows edited by hand.
                        raise _Collision()
            except _Collision:
                # Rolled back: the scope (or the key) already has a job, committed by another request.
                with self._db.connect() as conn:
                    return self._existing(conn, client, key, s, p.draft.idempotency_scope), False
        except sa.exc.OperationalError as exc:
            raise ApiError(503, "unavailable", "The database is unavailable.", retry_after=RETRY_AFTER_SECONDS) from exc
        log.info("accepted %s job %s", s.kind, job.id, extra={"job_id": job.id, "kind": s.kind})
        return answer, True

    def _existing(self, conn: sa.Connection, client: str, key: str, s: Submission, scope: str) -> SavedAnswer:
        """The answer for a request whose scope already has a job: the saved answer if it is still kept, else the
        job itself; 422 ``idempotency_key_reused`` when the job was made from another request."""
        saved = self._store.lookup(client, key, s.request_hash, conn)
        if saved is not None:
            return saved
        job = job_repo.get_by_scope(conn, scope)
        if job is None:  # pragma: no cover - the conflict was on the (random) job id
            raise ApiError(503, "unavailable", "Try again.", retry_after=1)
        if job.kind != s.kind or job.request != s.data:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request body.",
                param="Idempotency-Key",
                error_type="idempotency_error",
            )
        return SavedAnswer(202, job.view(), replayed=True)

    def _hand_off(self) -> None:
        """Get the committed message on its way: wake the relay, or relay here (a failure leaves it in the outbox
        for the next relay; the client keeps its 202, the job is durable)."""
        if self._relay is not None:
            self._relay.kick()
            return
        from engine.ops.outbox_relay import relay_once

        try:
            relay_once(self._db, self._broker())
        except Exception as exc:
            log.warning("could not relay accepted jobs now (%s); the outbox relay sends them later", exc)


class _Collision(PaymentsError):
    """The job's idempotency scope is taken (rolls the transaction back)."""


def _error(index: int, exc: ApiError) -> dict[str, Any]:
    """One batch item's failure, in the API's error shape."""
    return {"index": index, "status": exc.status, **exc.body()}


def _insert_job(conn: sa.Connection, draft: Job) -> Job | None:
    """The job row inserted, or ``None`` when its idempotency scope already has a job (nothing is written)."""
    row = (
        conn.execute(pg_insert(jobs).values(**job_repo.row_values(draft)).on_conflict_do_nothing().returning(jobs))
        .mappings()
        .one_or_none()
    )
    return None if row is None else job_repo.row_to_job(row)
