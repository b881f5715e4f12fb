""" "Accepted" is durable (issue 13, item 4): a committed job is never deleted and always reaches SQS, whatever
happens at the SQS send, to Redis, or between two copies of one request.  Each test ends on the money invariant:
one job, one message on the queue, one charge at Stripe."""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from botocore.exceptions import ReadTimeoutError
from fastapi.testclient import TestClient

from engine.adapters.auth import mint
from engine.db.outbox import DISPATCH
from engine.db.tables import idempotency_keys, jobs, outbox
from engine.ingest.accept import JobAcceptor, api_scope
from engine.ingest.idempotency import IdempotencyStore, SavedAnswer, canonical_hash
from engine.jobs.kind import Lazy
from engine.ops.outbox_relay import relay_once
from engine.runtime.container import Container

CLIENT = "upstream-test"


def _payment(customer: str | None = None) -> dict[str, Any]:
    return {
        "customer": {
            "id": customer or f"cus_{uuid.uuid4().hex[:10]}",
            "email": "anna@example.ie",
            "country": "IE",
            "type": "consumer",
        },
        "amount": 1000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
    }


def _submit(acceptor: JobAcceptor, key: str, body: dict[str, Any], client: str = CLIENT) -> SavedAnswer:
    """What ``POST /v1/payments`` hands the acceptor for ``body`` (already in its validated form)."""
    return acceptor.accept(
        client=client,
        key=key,
        request_hash=canonical_hash("POST", "/v1/payments", body),
        kind="payment",
        data=body,
        group_key=body["customer"]["id"],
        customer_id=body["customer"]["id"],
        correlation_id=None,
        public={"customer": body["customer"]["id"], "amount": body["amount"], "currency": body["currency"]},
    )


def _drain(c: Container, base: str = "payments.fifo") -> list[dict[str, Any]]:
    """Every message on the queue (received and deleted), as envelope dicts."""
    url = c.sqs.get_queue_url(QueueName=c.settings.queue_prefix + base)["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    while True:
        out = c.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = out.get("Messages", [])
        if not messages:
            return bodies
        for m in messages:
            bodies.append(json.loads(m["Body"]))
            c.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _jobs_of(c: Container, client: str, key: str) -> list[str]:
    with c.db.connect() as conn:
        return list(
            conn.execute(sa.select(jobs.c.id).where(jobs.c.idempotency_scope == api_scope(client, key))).scalars()
        )


def _dispatches(c: Container, job_id: str) -> int:
    with c.db.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    outbox.c.event_type == DISPATCH, outbox.c.event_key == f"dispatch:{job_id}"
                )
            ).scalar_one()
        )


def _relayed(c: Container, job_id: str) -> bool:
    with c.db.connect() as conn:
        return bool(
            conn.execute(
                sa.select(outbox.c.relayed_at.is_not(None)).where(outbox.c.event_key == f"dispatch:{job_id}")
            ).scalar_one()
        )


def _charges(stripe_sim: Any, job_id: str) -> list[dict[str, Any]]:
    data = httpx.get(f"{stripe_sim.base_url}/_sim/payment_intents").json()["data"]
    return [pi for pi in data if (pi.get("metadata") or {}).get("job_id") == job_id and pi["status"] == "succeeded"]


def _run_every_copy(c: Container, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        c.run_job("payment", body)


class _StoredThenTimedOut:
    """A broker whose sends reach SQS and then time out on the way back (the reply is lost)."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker

    def enqueue_many(self, messages: list[Any]) -> list[Any]:
        self._broker.enqueue_many(messages)
        raise ReadTimeoutError(endpoint_url="http://sqs.invalid")


class _RefusingBroker:
    """A broker whose every send fails before SQS stores anything (SQS down)."""

    def enqueue_many(self, messages: list[Any]) -> list[Any]:
        raise ReadTimeoutError(endpoint_url="http://sqs.invalid")


def test_send_times_out_after_sqs_stored_it(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    acceptor = JobAcceptor(c.db, Lazy(lambda: _StoredThenTimedOut(c.broker)), c.idempotency, c.queues)
    key, body = f"k-{uuid.uuid4().hex}", _payment()
    first = _submit(acceptor, key, body)
    # The job is committed and answered 202 even though the send "failed": its dispatch row waits for the relay.
    assert first.status == 202
    (job_id,) = _jobs_of(c, CLIENT, key)
    assert first.body["id"] == job_id and _dispatches(c, job_id) == 1
    assert not _relayed(c, job_id)
    # The client retries: the same answer, no second job.
    assert _submit(acceptor, key, body) == first
    # The relay sends again; SQS drops the copy (same deduplication id), so one message reaches the queue.
    assert relay_once(c.db, c.broker) >= 1 and _relayed(c, job_id)
    bodies = _drain(c)
    assert [b["job_id"] for b in bodies] == [job_id]
    _run_every_copy(c, bodies)
    assert len(_charges(stripe_sim, job_id)) == 1
    assert _jobs_of(c, CLIENT, key) == [job_id]


def test_sqs_down_keeps_the_job_and_delivers_it_later(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    down = JobAcceptor(c.db, Lazy(_RefusingBroker), c.idempotency, c.queues)
    key, body = f"k-{uuid.uuid4().hex}", _payment()
    answer = _submit(down, key, body)
    assert answer.status == 202  # durable: committed with its message, never undone
    (job_id,) = _jobs_of(c, CLIENT, key)
    assert _drain(c) == []
    # A retry while SQS is still down gets the same job.
    assert _submit(down, key, body).body["id"] == job_id
    # SQS is back: the next relay round (any process's) sends it, once.
    assert not _relayed(c, job_id)
    assert relay_once(c.db, c.broker) >= 1 and _relayed(c, job_id)
    assert relay_once(c.db, c.broker) == 0
    bodies = _drain(c)
    assert [b["job_id"] for b in bodies] == [job_id]
    _run_every_copy(c, bodies)
    assert len(_charges(stripe_sim, job_id)) == 1


def _commits_during(c: Container, action: Callable[[], Any]) -> tuple[Any, int]:
    """``action()``'s result and how many transactions the container's engine committed while it ran."""
    counted = [0]

    def on_commit(_: Any) -> None:
        counted[0] += 1

    sa.event.listen(c.db, "commit", on_commit)
    try:
        return action(), counted[0]
    finally:
        sa.event.remove(c.db, "commit", on_commit)


def test_a_relay_round_commits_only_when_it_sent_something(payment_container) -> None:  # type: ignore[no-untyped-def]
    # The relay polls every second or so in every process: a round with nothing to send must not cost a commit
    # (it cost one per poll, most of a slow bench run's commits per payment).
    c = payment_container
    relay_once(c.db, c.broker)  # whatever earlier tests left
    assert _commits_during(c, lambda: relay_once(c.db, c.broker)) == (0, 0)
    down = JobAcceptor(c.db, Lazy(_RefusingBroker), c.idempotency, c.queues)
    _submit(down, f"k-{uuid.uuid4().hex}", _payment())
    with pytest.raises(ReadTimeoutError):  # a refused send marks nothing and commits nothing
        _commits_during(c, lambda: relay_once(c.db, _RefusingBroker()))
    sent, commits = _commits_during(c, lambda: relay_once(c.db, c.broker))
    assert (sent, commits) == (1, 1)
    _drain(c)


def test_a_deleted_queue_answers_202_and_the_job_survives(api, auth, container) -> None:  # type: ignore[no-untyped-def]
    url = container.sqs.get_queue_url(QueueName=container.settings.queue_prefix + "payments.fifo")["QueueUrl"]
    container.broker.queue_url("payments")  # cached URL, as in a running ingest
    container.sqs.delete_queue(QueueUrl=url)
    key, body = f"k-{uuid.uuid4().hex}", _payment()
    response = api.post("/v1/payments", json=body, headers=auth(key=key))
    assert response.status_code == 202, response.json()
    job_id = response.json()["id"]
    assert api.get(f"/v1/jobs/{job_id}", headers=auth("viewer", key=None)).json()["status"] == "accepted"
    from engine.broker.queues import provision

    provision(container.sqs, container.settings.queue_prefix, container.queues)
    container.broker._urls.clear()
    assert api.post("/v1/payments", json=body, headers=auth(key=key)).json()["id"] == job_id
    relay_once(container.db, container.broker)
    assert [b["job_id"] for b in _drain(container)] == [job_id]


def _race(n: int, fn: Callable[[], SavedAnswer]) -> tuple[list[SavedAnswer], list[BaseException]]:
    """Run ``fn`` in ``n`` threads released together; their answers and errors."""
    barrier = threading.Barrier(n)
    answers: list[SavedAnswer] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            answers.append(fn())
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, errors


@pytest.fixture
def no_redis_store(payment_container) -> IdempotencyStore:  # type: ignore[no-untyped-def]
    """The idempotency store with Redis unreachable (its lock fails open)."""
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    c = payment_container
    return IdempotencyStore(c.db, dead, c.redis_prefix, c.settings.idempotency.ttl_seconds)


def test_two_identical_requests_race_without_redis(payment_container, stripe_sim, no_redis_store) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    acceptor = JobAcceptor(c.db, Lazy(lambda: c.broker), no_redis_store, c.queues)
    keys = [f"k-{uuid.uuid4().hex}" for _ in range(5)]
    for key in keys:
        answers, errors = _race(2, lambda key=key, body=_payment(): _submit(acceptor, key, body))
        assert errors == []
        assert [a.status for a in answers] == [202, 202] and answers[0].body["id"] == answers[1].body["id"]
        (job_id,) = _jobs_of(c, CLIENT, key)
        assert _dispatches(c, job_id) == 1
    bodies = _drain(c)
    assert sorted(b["job_id"] for b in bodies) == sorted(_jobs_of(c, CLIENT, k)[0] for k in keys)
    _run_every_copy(c, bodies)
    for key in keys:
        assert len(_charges(stripe_sim, _jobs_of(c, CLIENT, key)[0])) == 1


class _StallingStore(IdempotencyStore):
    """Stalls the first request inside its transaction (job row written, not committed) until ``go`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inside = threading.Event()
        self.go = threading.Event()

    def expiry(self) -> datetime:
        # Asked for the saved answer's expiry: the job row is written, the answer and the commit are not.
        if not self.inside.is_set():
            self.inside.set()
            assert self.go.wait(30)
        return super().expiry()


def test_retry_after_the_lock_expired_while_the_first_is_in_flight(payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    store = _StallingStore(c.db, c.redis, c.redis_prefix, c.settings.idempotency.ttl_seconds)
    acceptor = JobAcceptor(c.db, Lazy(lambda: c.broker), store, c.queues)
    key, body = f"k-{uuid.uuid4().hex}", _payment()
    answers: dict[str, SavedAnswer] = {}
    first = threading.Thread(target=lambda: answers.__setitem__("first", _submit(acceptor, key, body)))
    first.start()
    assert store.inside.wait(10)
    # The first request's 60 s lock runs out (as it would while it hangs): the retry gets through the lock.
    c.redis.delete(store._lock_key(CLIENT, key))
    second = threading.Thread(target=lambda: answers.__setitem__("second", _submit(acceptor, key, body)))
    second.start()
    time.sleep(0.5)  # the retry now waits on the first one's uncommitted job row
    store.go.set()
    first.join(10)
    second.join(10)
    assert answers["first"] == answers["second"] and answers["first"].status == 202
    (job_id,) = _jobs_of(c, CLIENT, key)
    bodies = _drain(c)
    assert [b["job_id"] for b in bodies] == [job_id]
    _run_every_copy(c, bodies)
    assert len(_charges(stripe_sim, job_id)) == 1


def test_key_reused_after_its_ttl_and_scope_collisions_answer_the_job(container) -> None:  # type: ignore[no-untyped-def]
    c = container
    key, body = f"k-{uuid.uuid4().hex}", _payment()
    first = _submit(c.acceptor, key, body)
    with c.db.begin() as conn:
        conn.execute(idempotency_keys.update().values(expires_at=sa.func.now() - sa.text("interval '1 second'")))
    # After the TTL the same request meets its job (the worker may have made it from the message): that job again.
    again = _submit(c.acceptor, key, body)
    assert again.status == 202 and again.body["id"] == first.body["id"]
    other = _payment(body["customer"]["id"])
    other["amount"] = 2000
    with pytest.raises(Exception) as refused:
        _submit(c.acceptor, key, other)
    assert getattr(refused.value, "status", None) == 422 and refused.value.code == "idempotency_key_reused"  # type: ignore[attr-defined]
    assert len(_jobs_of(c, CLIENT, key)) == 1


def test_a_batch_key_used_again_for_one_payment_is_refused_and_writes_nothing(container) -> None:  # type: ignore[no-untyped-def]
    # The batch's answer is saved under its key without a job of that scope: the payment's job row goes in, the
    # live saved answer stops it, and the transaction rolls back (no job, no dispatch, no audit record).
    c = container
    key = f"k-{uuid.uuid4().hex}"
    batch = c.acceptor.accept_batch(client=CLIENT, key=key, request_hash="batch-hash", items=[])
    assert batch.status == 207
    with pytest.raises(Exception) as refused:
        _submit(c.acceptor, key, _payment())
    assert getattr(refused.value, "status", None) == 422 and refused.value.code == "idempotency_key_reused"  # type: ignore[attr-defined]
    assert _jobs_of(c, CLIENT, key) == []


def test_one_accepted_payment_is_one_commit_with_its_four_rows(container) -> None:  # type: ignore[no-untyped-def]
    from engine.audit.chain import for_job
    from engine.db.tables_audit import audit_pending

    c = container
    commits: list[object] = []

    def count(conn: object) -> None:
        commits.append(conn)

    sa.event.listen(c.db, "commit", count)
    # The ingest hands the message to its relay thread (kicked, not run here), so only the request's commit counts.
    acceptor = JobAcceptor(c.db, Lazy(lambda: c.broker), c.idempotency, c.queues)
    acceptor.use_relay(type("Relay", (), {"kick": lambda self: None})())
    body = _payment()
    try:
        answer = _submit(acceptor, f"k-{uuid.uuid4().hex}", body)
    finally:
        sa.event.remove(c.db, "commit", count)
    assert answer.status == 202 and len(commits) == 1
    job_id = answer.body["id"]
    with c.db.connect() as conn:
        saved = conn.execute(sa.select(idempotency_keys).where(idempotency_keys.c.job_id == job_id)).mappings().one()
        queued = conn.execute(sa.select(audit_pending.c.body).where(audit_pending.c.body.contains(job_id))).scalars()
        # Queued, or chained already if a sealer ran meanwhile.
        audit_bodies = [json.loads(b) for b in [*queued, *(r.body for r in for_job(conn, job_id))]]
    assert saved["response_status"] == 202 and saved["response_body"] == answer.body
    assert _dispatches(c, job_id) == 1
    assert [(b["action"], b["job"], b["actor"]) for b in audit_bodies] == [("job.create", job_id, CLIENT)]
    assert audit_bodies[0]["detail"]["request_sha256"] == canonical_hash("POST", "/v1/payments", body)


def test_the_scope_is_unambiguous(container) -> None:  # type: ignore[no-untyped-def]
    assert api_scope("a:b", "k") != api_scope("a", "b:k")
    body = _payment()
    one = _submit(container.acceptor, "b:k", body, client="a")
    two = _submit(container.acceptor, "k", body, client="a:b")
    assert one.body["id"] != two.body["id"]


@pytest.fixture
def payment_api(payment_container) -> TestClient:  # type: ignore[no-untyped-def]
    from engine.ingest.app import create_app

    with TestClient(create_app(payment_container)) as client:  # the lifespan starts the ingest's relay
        yield client


def _headers(settings: Any, key: str, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {mint(settings, 'operator', sub=CLIENT, ttl_seconds=600)}",
        "Idempotency-Key": key,
        **extra,
    }


def test_the_ingest_relay_sends_what_the_requests_committed(payment_api, payment_container, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    c = payment_container
    ids = [
        payment_api.post("/v1/payments", json=_payment(), headers=_headers(c.settings, f"k-{uuid.uuid4().hex}")).json()[
            "id"
        ]
        for _ in range(5)
    ]
    deadline = time.monotonic() + 10
    bodies: list[dict[str, Any]] = []
    while len(bodies) < len(ids) and time.monotonic() < deadline:
        bodies += _drain(c)
        time.sleep(0.1)
    assert sorted(b["job_id"] for b in bodies) == sorted(ids)
    assert all(_relayed(c, job_id) for job_id in ids)


@pytest.mark.parametrize(
    ("headers", "code", "param"),
    [
        ({"X-Request-ID": "r" * 256}, "request_id_invalid", "X-Request-ID"),
        ({"X-Request-ID": "has space"}, "request_id_invalid", "X-Request-ID"),
        ({"X-Request-ID": "4111111111111111"}, "pan_detected", "X-Request-ID"),
        ({"X-Request-ID": "4111-1111-1111-1111"}, "pan_detected", "X-Request-ID"),
        ({"Idempotency-Key": "4111111111111111"}, "pan_detected", "Idempotency-Key"),
        ({"Idempotency-Key": "key/with/slash"}, "idempotency_key_invalid", "Idempotency-Key"),
    ],
)
def test_bad_headers_are_refused_before_anything_is_written(
    api: TestClient,
    auth: Callable[..., dict[str, str]],
    container: Container,
    caplog: Any,
    headers: dict[str, str],
    code: str,
    param: str,
) -> None:
    before = _count_rows(container)
    response = api.post("/v1/payments", json=_payment(), headers={**auth(key=f"k-{uuid.uuid4().hex}"), **headers})
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == code and response.json()["error"]["param"] == param
    for value in headers.values():
        assert value not in response.text and value not in response.headers.get("X-Request-ID", "")
        assert value not in caplog.text
    assert _count_rows(container) == before


def test_a_long_request_id_within_the_limit_reaches_the_message(api, auth, container) -> None:  # type: ignore[no-untyped-def]
    request_id = "req-" + "a" * 200  # 204 characters: refused by the old 128-character envelope after the commit
    response = api.post(
        "/v1/payments", json=_payment(), headers={**auth(key=f"k-{uuid.uuid4().hex}"), "X-Request-ID": request_id}
    )
    assert response.status_code == 202 and response.headers["X-Request-ID"] == request_id
    (message,) = _drain(container)
    assert message["correlation_id"] == request_id and message["job_id"] == response.json()["id"]


def _count_rows(c: Container) -> tuple[int, int, int]:
    with c.db.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (jobs, idempotency_keys, outbox)
        )


def test_collision_with_a_job_the_worker_created(container) -> None:  # type: ignore[no-untyped-def]
    """Issue 13.4(b): the message reached SQS but the answer was lost; the worker made the job from the envelope
    (no saved answer).  The client's retry meets that job: 202 with it, not an IntegrityError."""
    from engine.broker.envelope import Envelope

    key, body = f"k-{uuid.uuid4().hex}", _payment()
    envelope = Envelope.new(
        kind="payment", data=body, idempotency_scope=api_scope(CLIENT, key), group_id=body["customer"]["id"]
    ).to_arg()
    made = container.ensure_job(Envelope.model_validate(envelope))
    answer = _submit(container.acceptor, key, copy.deepcopy(made.request))
    assert answer.status == 202 and answer.body["id"] == made.id
