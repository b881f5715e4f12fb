"""The Redis sliding-window velocity counter against a real Redis (engine.adapters.velocity)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from engine.adapters.velocity import RedisVelocityCounter
from engine.domain.fraud import FraudInput, assess, count_velocity

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    for key in c.scan_iter(match=f"{redis_prefix}*"):
        c.delete(key)
    c.close()


def test_counts_hits_in_the_window_and_namespaces_keys(client: redis.Redis, redis_prefix: str) -> None:
    counter = RedisVelocityCounter(client, redis_prefix)
    assert [counter.hit("customer:c1", 60) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert counter.hit("customer:c2", 60) == 1
    assert counter.key("customer:c1") == f"{redis_prefix}velocity:customer:c1"
    keys = {k.decode() for k in client.scan_iter(match=f"{redis_prefix}*")}
    assert keys == {f"{redis_prefix}velocity:customer:c1", f"{redis_prefix}velocity:customer:c2"}
    ttl = client.pttl(counter.key("customer:c1"))
    assert 0 < ttl <= 60_000


def test_two_prefixes_never_share_counts(client: redis.Redis, redis_prefix: str) -> None:
    a = RedisVelocityCounter(client, redis_prefix + "a:")
    b = RedisVelocityCounter(client, redis_prefix + "b:")
    a.hit("customer:c", 60)
    a.hit("customer:c", 60)
    assert b.hit("customer:c", 60) == 1


def test_old_events_leave_the_window(client: redis.Redis, redis_prefix: str) -> None:
    counter = RedisVelocityCounter(client, redis_prefix)
    assert counter.hit("k", 1) == 1
    assert counter.hit("k", 1) == 2
    time.sleep(1.1)
    assert counter.hit("k", 1) == 1


def test_same_member_counts_once(client: redis.Redis, redis_prefix: str) -> None:
    counter = RedisVelocityCounter(client, redis_prefix)
    assert counter.hit("k", 60, member="job-1") == 1
    assert counter.hit("k", 60, member="job-1") == 1
    assert counter.hit("k", 60, member="job-2") == 2


def test_concurrent_hits_are_all_counted(client: redis.Redis, redis_prefix: str) -> None:
    counter = RedisVelocityCounter(client, redis_prefix)
    with ThreadPoolExecutor(8) as pool:
        counts = sorted(pool.map(lambda _: counter.hit("k", 60), range(40)))
    assert counts == list(range(1, 41))


def test_the_eleventh_payment_a_minute_is_reviewed(client: redis.Redis, redis_prefix: str) -> None:
    counter = RedisVelocityCounter(client, redis_prefix)
    inp = FraudInput("cus_fast", "a@example.com", "DE", "DE", 1000, "eur", "pm_card_visa")
    decisions = [assess(inp, count_velocity(inp, counter)).decision for _ in range(11)]
    assert decisions == ["approve"] * 10 + ["review"]
