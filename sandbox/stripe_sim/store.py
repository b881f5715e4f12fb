"""The sandbox's objects: in memory, optionally kept in a SQLite file across restarts.

Objects are plain JSON-able dicts in Stripe's shape.  A dict may carry a private ``_sim`` member (e.g. which test
card a PaymentMethod stands for); :func:`public` strips it before anything leaves the sandbox.  Every access goes
through :attr:`Store.lock` (an ``RLock``) because the API thread and the webhook delivery threads share the store.
With a ``state_file`` every changed object is written on :meth:`Store.flush` (once per API request), so a restart
finds what the last answered request left.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.runtime.private_files import touch_private
from sandbox.stripe_sim.idempotency import IdempotencyStore, SavedResponse

__all__ = ["KINDS", "Store", "public"]

KINDS = (
    "customer",
    "payment_method",
    "payment_intent",
    "charge",
    "refund",
    "event",
    "webhook_endpoint",
    "balance_transaction",
    "dispute",
    "payout",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, id TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, created REAL NOT NULL,
    status INTEGER NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, request_id TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as Stripe shows it (without the sandbox's private ``_sim`` member)."""
    if "_sim" not in obj:
        return obj
    return {k: v for k, v in obj.items() if k != "_sim"}


class Store:
    """Objects by kind and id, in creation order, with optional SQLite persistence."""

    def __init__(self, state_file: str | Path | None = None) -> None:
        self.lock = threading.RLock()
        self._objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._seq = 0
        self._dirty: dict[str, tuple[str, int, dict[str, Any]]] = {}
        self._db: sqlite3.Connection | None = None
        if state_file is not None:
            # 0600 from creation (SQLite gives its -wal and -shm files the database file's mode).
            touch_private(Path(state_file))
            self._db = sqlite3.connect(str(state_file), check_same_thread=False, isolation_level=None)
            # WAL + NORMAL: one fsync-light commit per request keeps persistence from slowing the API down.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._load()

    # -- objects -----------------------------------------------------------------------------------------------
    def get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """The stored object, or None."""
        with self.lock:
            return self._objects[kind].get(object_id)

    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store (or replace) ``obj`` under its ``id``; returns it."""
        with self.lock:
            table = self._objects[kind]
            if obj["id"] not in table:
                self._seq += 1
                obj.setdefault("_sim", {})["seq"] = self._seq
            table[obj["id"]] = obj
            if self._db is not None:
                self._dirty[obj["id"]] = (kind, obj["_sim"]["seq"] if "_sim" in obj else 0, obj)
            return obj

    def delete(self, kind: str, object_id: str) -> None:
        """Remove an object (no error if absent)."""
        with self.lock:
            self._objects[kind].pop(object_id, None)
            self._dirty.pop(object_id, None)
            if self._db is not None:
                self._db.execute("DELETE FROM objects WHERE id = ?", (object_id,))

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind, oldest first (a copy of the list; the dicts are shared)."""
        with self.lock:
            return list(self._objects[kind].values())

    def iter_newest_first(self, kind: str) -> Iterator[dict[str, Any]]:
        """Objects of a kind, newest first (a snapshot)."""
        return reversed(self.all(kind))

    def count(self, kind: str) -> int:
        with self.lock:
            return len(self._objects[kind])

    # -- persistence -------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every object changed since the last flush (no-op without a state file)."""
        if self._db is None:
            return
        with self.lock:
            if not self._dirty:
                return
            rows = [(kind, oid, seq, json.dumps(obj)) for oid, (kind, seq, obj) in self._dirty.items()]
            self._dirty.clear()
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO objects (kind, id, seq, data) VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def _load(self) -> None:
        assert self._db is not None
        for kind, _oid, seq, data in self._db.execute("SELECT kind, id, seq, data FROM objects ORDER BY seq"):
            if kind in self._objects:
                obj = json.loads(data)
                self._objects[kind][obj["id"]] = obj
                self._seq = max(self._seq, seq)

    def attach_idempotency(self, idem: IdempotencyStore) -> None:
        """Mirror saved idempotent answers to the state file and load those already there."""
        if self._db is None:
            return
        db = self._db
        for scope, key, fp, created, status, headers, body, rid in db.execute(
            "SELECT scope, key, fingerprint, created, status, headers, body, request_id FROM idempotency"
        ):
            idem.load(scope, key, fp, created, SavedResponse(status, json.loads(headers), bytes(body), rid))

        def on_save(scope: str, key: str, fp: str, created: float, response: SavedResponse) -> None:
            with self.lock:
                db.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        scope,
                        key,
                        fp,
                        created,
                        response.status,
                        json.dumps(response.headers),
                        response.body,
                        response.request_id,
                    ),
                )

        def on_forget(scope: str, key: str) -> None:
            with self.lock:
                db.execute("DELETE FROM idempotency WHERE scope = ? AND key = ?", (scope, key))

        idem.on_save = on_save
        idem.on_forget = on_forget

    def reset(self) -> None:
        """Forget every object (and the state file's rows)."""
        with self.lock:
            for table in self._objects.values():
                table.clear()
            self._dirty.clear()
            if self._db is not None:
                self._db.execute("DELETE FROM objects")
                self._db.execute("DELETE FROM idempotency")

    def close(self) -> None:
        """Flush and close the state file."""
        with self.lock:
            if self._db is not None:
                self.flush()
                self._db.close()
                self._db = None
