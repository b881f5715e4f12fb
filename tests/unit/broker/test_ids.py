from __future__ import annotations

import hashlib

import pytest

from engine.broker.ids import deduplication_id, dlq_deduplication_id, message_group_id


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.mark.parametrize("key", ["cus_123", "a" * 128, "tml_9:merchant/7", "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"])
def test_group_id_is_the_key_when_sqs_accepts_it(key: str) -> None:
    assert message_group_id(key) == key


@pytest.mark.parametrize("key", ["a" * 129, "customer one", "kunde-ü", "tab\there", "new\nline"])
def test_group_id_is_sha256_hex_otherwise(key: str) -> None:
    assert message_group_id(key) == _sha(key)
    assert len(message_group_id(key)) == 64


def test_group_id_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError):
        message_group_id("")


def test_dedup_id_is_sha256_of_scope_with_optional_suffix() -> None:
    assert deduplication_id("sub:dev|key:k1") == _sha("sub:dev|key:k1")
    assert deduplication_id("s", ":replay:2") == _sha("s") + ":replay:2"
    assert deduplication_id("s", ":reconcile:11") == _sha("s") + ":reconcile:11"
    assert deduplication_id("s") == deduplication_id("s")  # never random


@pytest.mark.parametrize("suffix", [":replay:0", ":replay:x", "replay:1", ":other:1", ":replay:"])
def test_dedup_id_refuses_other_suffixes(suffix: str) -> None:
    with pytest.raises(ValueError):
        deduplication_id("s", suffix)


def test_dedup_id_refuses_an_empty_scope() -> None:
    with pytest.raises(ValueError):
        deduplication_id("")


def test_dlq_dedup_id() -> None:
    assert dlq_deduplication_id("5fa0c0a1-aaaa") == "dlq:5fa0c0a1-aaaa"
    assert dlq_deduplication_id("x" * 200) == "dlq:" + _sha("x" * 200)
