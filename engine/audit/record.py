"""What an audit record is, and the hash rule that chains records (pure; the database applies the same rule).

A record's body is canonical JSON: keys sorted, no insignificant whitespace, non-ASCII kept as UTF-8.  Its hash is
``sha256(f"{seq}\\n{prev_hash}\\n{body}")`` in lower-case hex; the first record's ``prev_hash`` is 64 zeros.
The SQL function ``audit_append`` (migration 0011) computes the same; :func:`record_hash` is what verification
recomputes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON text.  Raises :class:`TypeError` for a value JSON cannot hold, and
    :class:`ValueError` for NaN or infinity (they have no JSON spelling)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(seq: int, prev_hash: str, body: str) -> str:
    """The hash record ``seq`` must carry, given the previous record's hash and its own body."""
    return hashlib.sha256(f"{seq}\n{prev_hash}\n{body}".encode()).hexdigest()


def make_body(*, at: str, actor: str, action: str, job: str | None = None, detail: dict[str, Any] | None = None) -> str:
    """The canonical body of a record: when (ISO 8601 UTC), who (a token subject, ``cli:<user>``, ``stripe``,
    ``process:<role>``), what (a dotted action such as ``job.create``), the job it concerns, and details.

    Details must hold no personal data (e-mail, name): the chain is immutable and erasure cannot reach it.
    """
    body: dict[str, Any] = {"at": at, "actor": actor, "action": action, "job": job, "detail": detail or {}}
    return canonical_json(body)


@dataclass(frozen=True)
class AuditRecord:
    """One record as stored (and as shipped: one JSON line per record)."""

    seq: int
    prev_hash: str
    hash: str
    body: str

    def as_line(self) -> str:
        """The record as one JSON line of a shipped object."""
        return canonical_json({"seq": self.seq, "prev_hash": self.prev_hash, "hash": self.hash, "body": self.body})

    @classmethod
    def from_line(cls, line: str) -> AuditRecord:
        """Parse a shipped line.  Raises :class:`ValueError` when it is not a record."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            return cls(int(data["seq"]), str(data["prev_hash"]), str(data["hash"]), str(data["body"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an audit record: {exc}") from exc

    def fields(self) -> dict[str, Any]:
        """The parsed body (``{}`` when it is not a JSON object)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
