"""Idempotency-Key with Stripe's semantics, scoped per client (JWT ``sub``).

* same key, same body → the first answer again (whatever the job's status since);
* same key, another body → 422 ``idempotency_key_reused``;
* same key while the first request has not answered → 409 ``idempotency_key_in_use``.

The saved answer is written in the same transaction as the job row (one commit per accepted request); "in flight"
is a short Redis lock held until the first request answers.  The database's primary key on (client, key) is the
real guard: without Redis, a concurrent duplicate is answered with the first request's saved answer instead of 409.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from engine.db.tables import idempotency_keys
from engine.ingest.errors import ApiError
from engine.ingest.headers import check_idempotency_key

LOCK_SECONDS = 60


def canonical_hash(method: str, path: str, body: Any) -> str:
    """SHA-256 of the request as canonical JSON (sorted keys, no spaces), so formatting never matters."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_key(key: str | None) -> str:
    """The Idempotency-Key (see :func:`engine.ingest.headers.check_idempotency_key`, which this delegates to).

    Raises :class:`ApiError` 400 ``idempotency_key_missing``, ``idempotency_key_invalid`` or ``pan_detected``.
    """
    return check_idempotency_key(key)


@dataclass(frozen=True)
class SavedAnswer:
    """An answer to a request that accepts a job; ``replayed`` when it is an earlier request's answer again (an
    answer and its replay are equal: the flag only sets the ``Idempotent-Replayed`` header)."""

    status: int
    body: dict[str, Any]
    replayed: bool = field(default=False, compare=False)


class IdempotencyStore:
    """Saved answers in PostgreSQL, in-flight locks in Redis."""

    def __init__(self, db: sa.Engine, redis_client: redis.Redis | None, prefix: str, ttl_seconds: int) -> None:
        self._db = db
        self._redis = redis_client
        self._prefix = prefix
        self._ttl = ttl_seconds

    def _lock_key(self, client: str, key: str) -> str:
        digest = hashlib.sha256(f"{client}\0{key}".encode()).hexdigest()
        return f"{self._prefix}idem:{digest}"

    def lookup(self, client: str, key: str, request_hash: str, conn: sa.Connection | None = None) -> SavedAnswer | None:
        """The saved answer for this key if the same request was answered; ``None`` if the key is unused.

        Reads in ``conn`` when given (the caller's transaction: one pool checkout per request), else in its own.
        Raises :class:`ApiError` 422 ``idempotency_key_reused`` when the key was used for another request.
        """
        query = sa.select(idempotency_keys).where(
            idempotency_keys.c.client == client,
            idempotency_keys.c.key == key,
            idempotency_keys.c.expires_at > sa.func.now(),
        )
        if conn is not None:
            row = conn.execute(query).mappings().one_or_none()
        else:
            with self._db.connect() as own:
                row = own.execute(query).mappings().one_or_none()
        if row is None:
            return None
        if row["request_hash"] != request_hash:
            raise ApiError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request body.",
                param="Idempotency-Key",
                error_type="idempotency_error",
            )
        return SavedAnswer(row["response_status"], row["response_body"], replayed=True)

    def acquire(self, client: str, key: str) -> bool:
        """Take the in-flight lock; False when another request with this key has not answered yet.

        Fails open (True) when Redis is unreachable: the database key still prevents a second job.
        """
        if self._redis is None:
            return True
        try:
            return bool(self._redis.set(self._lock_key(client, key), "1", nx=True, ex=LOCK_SECONDS))
        except redis.RedisError:
            return True

    def release(self, client: str, key: str) -> None:
        if self._redis is None:
            return
        with contextlib.suppress(redis.RedisError):
            self._redis.delete(self._lock_key(client, key))

    def expiry(self) -> datetime:
        """When an answer saved now expires (the key may then be used afresh)."""
        return datetime.now(UTC) + timedelta(seconds=self._ttl)

    def save(
        self, conn: sa.Connection, client: str, key: str, request_hash: str, job_id: str | None, answer: SavedAnswer
    ) -> bool:
        """Save the answer inside the caller's transaction (with the job row); False if the key already exists."""
        expires = self.expiry()
        values = {
            "client": client,
            "key": key,
            "request_hash": request_hash,
            "job_id": job_id,
            "response_status": answer.status,
            "response_body": answer.body,
            "expires_at": expires,
        }
        stmt = insert(idempotency_keys).values(**values)
        # An expired row for this key is replaced (after the TTL a key may be used afresh, as on Stripe); a live
        # one is kept and nothing is returned.  One statement: the ingest's request path counts them.
        result = conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[idempotency_keys.c.client, idempotency_keys.c.key],
                set_={name: stmt.excluded[name] for name in values if name not in ("client", "key")}
                | {"created_at": sa.func.now()},
                where=idempotency_keys.c.expires_at <= sa.func.now(),
            ).returning(idempotency_keys.c.key)
        )
        return result.first() is not None

    def purge_expired(self) -> int:
        """Delete expired keys; returns how many (a scheduler task)."""
        with self._db.begin() as conn:
            return conn.execute(
                idempotency_keys.delete().where(idempotency_keys.c.expires_at <= sa.func.now())
            ).rowcount
