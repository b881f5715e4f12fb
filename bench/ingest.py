"""Ingest scenario: requests/s that ``POST /v1/payments`` sustains with p99 latency under 50 ms.

The baseline is a bare FastAPI endpoint (reads the body, answers a constant 202 JSON: no auth, validation,
database, Redis or queue) served by the *same* uvicorn process as the ingest (an ASGI dispatcher sends
``/_bare/…`` to it), driven by the same client on the same loopback.

The ingest process is the one the payments scenario uses (``python -m bench.probe ingest``: the real app
as ``payments serve`` runs it, with real PostgreSQL in a scratch database, Redis under a private prefix for the
idempotency lock and the rate limiter — limit out of reach, check still made — and the local SQS endpoint in its
own process).  No worker runs: accepted jobs stay queued.

The load generator is closed-loop and bounded: ``c`` connections, each sending its next request when the last one
was answered, for a fixed time per step; ``c`` doubles (1, 2, 4, …, 64) while p99 < 50 ms or the rate still grows.
The headline figure is the best rate of a step whose p99 stayed under 50 ms (0 when none did: then the note says
so); the saturation rate (best of any step, whatever its latency) is printed beside it.  The client is a minimal
HTTP/1.1 keep-alive client on asyncio streams in the bench process, so that on a 2-core machine it takes as little
CPU from the server as it can (an httpx client costs several times more per request; ``wrk`` is not on a fresh
machine).  Every request to the ingest carries its own Idempotency-Key, so each one creates a job.

Also printed: p50 latency at concurrency 1, and the server process's CPU per request (``time.process_time`` read
inside the server process before and after each ladder, divided by every request it answered in that ladder).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field

from bench.common import Figure
from bench.payments import payment_body
from bench.probe import ProbedProcess
from bench.services import (
    delete_prefix,
    engine_env,
    mint_token,
    provision_queues,
    redis_client,
    scratch_database,
    services,
)
from sandbox.ports import free_port

NAME = "ingest"
P99_LIMIT_MS = 50.0
CONCURRENCY_STEPS = (1, 2, 4, 8, 16, 32, 64)
WARMUP_SECONDS = 0.5


@dataclass
class Step:
    """One load step: ``concurrency`` connections for ``seconds``; latencies of the requests answered in it."""

    concurrency: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    #: Every response, warm-up and window edges included (server CPU is divided by this).
    answered: int = 0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("inf")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def describe(self) -> str:
        return (
            f"c={self.concurrency}: {self.rate:.0f}/s p50 {self.percentile(0.5):.1f} ms "
            f"p99 {self.percentile(0.99):.1f} ms"
            + ("" if self.ok == sum(self.statuses.values()) else f" statuses {self.statuses}")
        )


class Target:
    """What to request: a path and headers; a fresh Idempotency-Key and body per request."""

    def __init__(self, port: int, path: str, token: str) -> None:
        self.port = port
        self.path = path
        self.token = token
        self.run = uuid.uuid4().hex[:8]
        self.count = 0

    def request(self) -> bytes:
        self.count += 1
        body = json.dumps(payment_body(self.run, self.count, 1000)).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nIdempotency-Key: {uuid.uuid4().hex}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    """Send one request, read one response (Content-Length framed, as uvicorn answers JSON); return the status."""
    writer.write(raw)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _step(target: Target, concurrency: int, seconds: float) -> Step:
    """Closed loop: each connection sends its next request when the previous one is answered."""
    step = Step(concurrency, seconds)
    measure_from = time.perf_counter() + WARMUP_SECONDS
    measure_to = measure_from + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= measure_to:
                    return
                status = await _exchange(reader, writer, target.request())
                done = time.perf_counter()
                step.answered += 1
                if sent >= measure_from and done <= measure_to:  # requests wholly inside the window
                    step.latencies_ms.append((done - sent) * 1000)
                    step.statuses[status] = step.statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return step


def ladder(target: Target, seconds: float) -> list[Step]:
    """Double the concurrency while p99 stays under the limit or the rate still grows (> 10 %), up to the cap.

    Going on past the limit while the rate grows finds the saturation rate too, which is worth printing when a
    loaded machine never keeps p99 under the limit at all.
    """
    steps: list[Step] = []
    for concurrency in CONCURRENCY_STEPS:
        top = max((s.rate for s in steps), default=0.0)
        step = asyncio.run(_step(target, concurrency, seconds))
        steps.append(step)
        if step.percentile(0.99) >= P99_LIMIT_MS and step.rate <= 1.1 * top:
            break
    return steps


def best(steps: list[Step]) -> tuple[float, str]:
    """The best rate among steps with p99 under the limit, and how it was reached (or why there is none)."""
    under = [s for s in steps if s.percentile(0.99) < P99_LIMIT_MS and s.ok]
    if not under:
        return 0.0, f"no step kept p99 < {P99_LIMIT_MS:.0f} ms"
    top = max(under, key=lambda s: s.rate)
    return top.rate, f"best at {top.describe()}"


def run(quick: bool) -> list[Figure]:
    """Step the load on the bare endpoint, then on the ingest; report rates at p99 < 50 ms and server CPU."""
    seconds = float(os.environ.get("BENCH_INGEST_STEP_SECONDS", "1" if quick else "2.5"))
    redis = redis_client()
    run_id = uuid.uuid4().hex[:8]
    redis_prefix = f"bench:{run_id}:"
    queue_prefix = f"b{run_id}-"
    jwt_secret = secrets.token_urlsafe(32)
    with services(with_stripe=False) as stack, scratch_database("ingest") as db_url:
        provision_queues(stack.aws_url, queue_prefix)
        port = free_port()
        env = engine_env(stack, db_url, redis_prefix, queue_prefix, jwt_secret)
        server = ProbedProcess(f"ingest-{run_id}", ["ingest", str(port)], env, stack.workdir).start()
        try:
            server.wait_for_http(f"http://127.0.0.1:{port}/health/live")
            token = mint_token(jwt_secret)
            # Warm both paths once (first request imports and connects lazily) before anything is measured.
            for path in ("/_bare/v1/payments", "/v1/payments"):
                asyncio.run(_step(Target(port, path, token), 1, 0.2))
            before = server.snapshot()
            bare = ladder(Target(port, "/_bare/v1/payments", token), seconds)
            middle = server.snapshot()
            ingest = ladder(Target(port, "/v1/payments", token), seconds)
            after = server.snapshot()
        finally:
            server.stop(grace=5)
            delete_prefix(redis, redis_prefix)
    bare_rate, bare_how = best(bare)
    ingest_rate, ingest_how = best(ingest)
    bare_requests = _requests_sent(bare)
    ingest_requests = _requests_sent(ingest)
    bare_cpu = (middle["cpu_seconds"] - before["cpu_seconds"]) * 1000 / max(1, bare_requests)
    ingest_cpu = (after["cpu_seconds"] - middle["cpu_seconds"]) * 1000 / max(1, ingest_requests)
    ingest_sqs = {op: n - middle["sqs"].get(op, 0) for op, n in after["sqs"].items() if n - middle["sqs"].get(op, 0)}
    note = (
        f"closed loop, {seconds:g} s per step after {WARMUP_SECONDS:g} s warm-up; ingest: {ingest_how}; "
        f"bare: {bare_how}; ingest steps: {'; '.join(s.describe() for s in ingest)}; "
        f"bare steps: {'; '.join(s.describe() for s in bare)}"
    )
    cpu_note = (
        f"server process CPU over each ladder / requests answered ({ingest_requests} ingest, {bare_requests} bare); "
        f"ingest per request: "
        f"{(after['commits'] - middle['commits']) / max(1, ingest_requests):.2f} commits, "
        f"{(after['checkouts'] - middle['checkouts']) / max(1, ingest_requests):.2f} pool checkouts, SQS {ingest_sqs}"
    )
    return [
        Figure(
            NAME,
            f"POST /v1/payments req/s at p99 < {P99_LIMIT_MS:.0f} ms",
            "req/s",
            ingest_rate,
            bare_rate,
            "bare FastAPI endpoint",
            "higher",
            note,
        ),
        Figure(
            NAME,
            "POST /v1/payments req/s at saturation (any p99)",
            "req/s",
            max(s.rate for s in ingest),
            max(s.rate for s in bare),
            "bare FastAPI endpoint",
            "higher",
            note,
        ),
        Figure(
            NAME,
            "p50 latency at concurrency 1",
            "ms",
            ingest[0].percentile(0.5),
            bare[0].percentile(0.5),
            "bare FastAPI endpoint",
            "lower",
            note,
        ),
        Figure(NAME, "server CPU/request", "ms", ingest_cpu, bare_cpu, "bare FastAPI endpoint", "lower", cpu_note),
    ]


def _requests_sent(steps: list[Step]) -> int:
    """Every request the server answered during the ladder (warm-up and window edges included)."""
    return sum(s.answered for s in steps)
