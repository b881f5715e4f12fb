"""The hash rule and canonical JSON of audit records, and the per-record check verification applies."""

from __future__ import annotations

import hashlib

import pytest

from engine.audit.record import GENESIS, AuditRecord, canonical_json, make_body, record_hash
from engine.audit.verify import check_record


def test_canonical_json_sorts_keys_drops_spaces_keeps_utf8() -> None:
    assert canonical_json({"b": 1, "a": {"z": "ü", "y": [1, 2]}}) == '{"a":{"y":[1,2],"z":"ü"},"b":1}'


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_record_hash_is_sha256_of_seq_prev_and_body() -> None:
    body = make_body(at="2026-12-05T10:00:00Z", actor="cli:ops", action="dlq.replay", job="job_1")
    expected = hashlib.sha256(f"1\n{GENESIS}\n{body}".encode()).hexdigest()
    assert record_hash(1, GENESIS, body) == expected


def _chain(n: int) -> list[AuditRecord]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        body = make_body(at="2026-12-05T10:00:00Z", actor="a", action="job.create", job=f"job_{seq}")
        h = record_hash(seq, prev, body)
        out.append(AuditRecord(seq, prev, h, body))
        prev = h
    return out


def test_a_good_chain_passes_each_check() -> None:
    prev = GENESIS
    for n, record in enumerate(_chain(3), start=1):
        assert check_record(record, n, prev) is None
        prev = record.hash


def test_each_kind_of_damage_is_named() -> None:
    one, two, _ = _chain(3)
    changed = AuditRecord(two.seq, two.prev_hash, two.hash, two.body.replace("job_2", "job_X"))
    assert "hash does not match" in (check_record(changed, 2, one.hash) or "")
    assert "prev_hash" in (check_record(two, 2, "f" * 64) or "")
    assert "missing" in (check_record(two, 1, GENESIS) or "")
    spaced = '{"action": "x"}'
    rehashed = AuditRecord(1, GENESIS, record_hash(1, GENESIS, spaced), spaced)
    assert "canonical" in (check_record(rehashed, 1, GENESIS) or "")


def test_a_shipped_line_round_trips() -> None:
    record = _chain(1)[0]
    assert AuditRecord.from_line(record.as_line()) == record
    with pytest.raises(ValueError):
        AuditRecord.from_line('{"seq": 1}')
