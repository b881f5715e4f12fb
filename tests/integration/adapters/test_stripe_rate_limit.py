"""Issue 17, item 6: Stripe's limits respected across workers.  Several gateways (workers) share token buckets in
Redis per account and endpoint; the sandbox enforces the same limits with 429s.  With the limiter: no 429; without
it, the same burst is a 429 storm."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
import stripe

from engine.adapters.stripe_gateway import StripeGateway
from engine.adapters.stripe_rate_limit import RateLimitWaitExceeded, StripeRateLimiter

pytestmark = pytest.mark.integration

KEY = "sk_test_rate_limits"
PER_ACCOUNT = 40.0
PER_ENDPOINT = 20.0
WORKERS = 3  # gateways, as three worker processes would have
THREADS = 4  # per worker
CALLS = 12  # per thread: 144 calls, far above 20/s if unlimited


def _stats(stripe_sim: Any) -> dict[str, int]:
    return dict(httpx.get(f"{stripe_sim.base_url}/_sim/stats").json())


def _burst(stripe_sim: Any, gateways: list[StripeGateway]) -> tuple[int, int, float]:
    """Every thread of every gateway lists PaymentIntents as fast as it can; returns (ok, 429s, seconds)."""

    def worker(gateway: StripeGateway) -> tuple[int, int]:
        ok = limited = 0
        for _ in range(CALLS):
            try:
                gateway.call("job_rate", gateway.client.v1.payment_intents.list, params={"limit": 1})
                ok += 1
            except stripe.RateLimitError:
                limited += 1
        return ok, limited

    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS * THREADS) as pool:
        results = list(pool.map(worker, [g for g in gateways for _ in range(THREADS)]))
    return sum(r[0] for r in results), sum(r[1] for r in results), time.monotonic() - started


def _gateways(stripe_sim: Any, limiter: Any) -> list[StripeGateway]:
    return [
        StripeGateway(KEY, stripe_sim.base_url, max_network_retries=0, rate_limiter=limiter(i)) for i in range(WORKERS)
    ]


@pytest.fixture
def limited_sandbox(stripe_sim: Any) -> Any:
    answer = httpx.post(
        f"{stripe_sim.base_url}/_sim/config",
        json={"rate_limit_per_account": PER_ACCOUNT, "rate_limit_per_endpoint": PER_ENDPOINT},
    )
    assert answer.status_code == 200, answer.text
    return stripe_sim


def test_without_the_limiter_a_burst_is_a_429_storm(limited_sandbox: Any) -> None:
    ok, limited, _ = _burst(limited_sandbox, _gateways(limited_sandbox, lambda i: None))
    assert limited > 0 and _stats(limited_sandbox)["rate_limited"] == limited
    print(f"without the limiter: {ok} ok, {limited} answered 429")


def test_with_a_shared_limiter_no_call_is_refused(limited_sandbox: Any, redis_url: str, redis_prefix: str) -> None:
    def limiter(i: int) -> StripeRateLimiter:
        # One Redis client per "worker", the buckets shared through Redis.
        return StripeRateLimiter(
            redis.Redis.from_url(redis_url),
            KEY,
            prefix=redis_prefix,
            per_account=PER_ACCOUNT,
            per_endpoint=PER_ENDPOINT,
        )

    ok, limited, seconds = _burst(limited_sandbox, _gateways(limited_sandbox, limiter))
    print(f"with the limiter: {ok} ok in {seconds:.1f}s, {limited} answered 429")
    assert limited == 0 and _stats(limited_sandbox)["rate_limited"] == 0
    assert ok == WORKERS * THREADS * CALLS
    # One endpoint at 20/s with a half-second burst: 144 calls take about (144 - 10) / 20 s.
    assert seconds >= (ok - PER_ENDPOINT / 2) / PER_ENDPOINT * 0.9


def test_the_buckets_hold_a_burst_then_pace_and_a_wait_too_long_is_refused(redis_url: str, redis_prefix: str) -> None:
    slept: list[float] = []
    limiter = StripeRateLimiter(
        redis.Redis.from_url(redis_url), KEY, prefix=redis_prefix, per_account=100, per_endpoint=10, sleep=slept.append
    )
    assert [limiter.try_take("payment_intents.create") for _ in range(5)] == [0.0] * 5  # the burst: half a second
    wait = limiter.try_take("payment_intents.create")
    assert 0.05 < wait <= 0.1  # the next token in at most 1/10 s
    assert limiter.try_take("customers.create") == 0.0  # another endpoint has its own bucket
    with pytest.raises(RateLimitWaitExceeded):
        limiter.acquire("payment_intents.create", max_wait=0.0)


def test_redis_down_lets_calls_through() -> None:
    limiter = StripeRateLimiter(redis.Redis(port=1, socket_connect_timeout=0.2), KEY)
    assert limiter.acquire("payment_intents.create") == 0.0


def test_the_container_limits_a_configured_stripe_key(payment_container: Any) -> None:
    limiter = payment_container.stripe.rate_limiter
    assert limiter is not None and (limiter.per_account, limiter.per_endpoint) == (100.0, 25.0)
