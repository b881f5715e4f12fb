"""Crash safety (issue 4, item 3): a few hundred payments while worker processes are SIGKILLed at random moments
and replaced.  Afterwards every job is terminal, the Stripe sandbox holds at most one successful charge per job
(exactly one per succeeded job), the ledger verifies with one transaction per succeeded job, and the merchant
webhook saw each event at most once — save the one repeat no notifier can rule out (below).

What "notified once" can mean here: the notifier marks an event delivered (Redis) after the merchant answered, so
a worker killed between the merchant's receipt of the POST and that mark leaves the event to be delivered again
(merchants dedup on ``Payments-Event-Id``).  Each worker posts to its own receiver URL, so a repeat is accepted
only when the worker that made the earlier delivery was SIGKILLed right after it; any other repeat fails the test.
Every event of a settled job is delivered, unless its notification message itself was dead-lettered after 20
receives that died with their workers (the catalogue's maxReceiveCount holds for ``notifications`` too): then the
DLQ sweep has recorded it for an operator.  No payment is dead-lettered: receives that die with their workers spend
no attempt of the job (engine/jobs/attempts.py).

How it is arranged, and why:

* ``payments run --no-worker`` runs the stack; the test starts and kills ``payments worker`` processes itself
  (``payments run`` gives up on a child after 5 restarts, and a killed worker must be replaced at once).
* ``PAYMENTS_SQS_VISIBILITY_TIMEOUT_SECONDS=5``: messages held by a killed worker come back after 5 s instead of
  the catalogue's 300 s; the 1 s heartbeat keeps messages that live workers are still working on invisible.
* The sandbox answers after 30–80 ms, so most kills land while charges are in flight at "Stripe".
* Kill times are random from a printed seed; ``CRASH_SEED=<n>`` replays a run's choices (the timing of the system
  under test still varies).  The assertions do not depend on where the kills land.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import sqlalchemy as sa

from sandbox.process import ManagedProcess, payments_argv, stop_all
from tests.e2e.conftest import ROOT, Stack, stack_dir, start_stack, stop_stack
from tests.e2e.receiver import Delivery, WebhookReceiver

pytestmark = pytest.mark.xdist_group("e2e")

PAYMENTS = 240
CUSTOMERS = 70  # many message groups
PER_CUSTOMER = 5  # far below the fraud velocity limit (10 a minute)
WORKERS = 2
KILLS = 14
KILL_EVERY = (0.5, 1.5)  # seconds between kills, uniform
VISIBILITY_SECONDS = 5
SUBMIT_SECONDS = 10.0  # submissions are spread over this long, so kills land throughout the processing
SETTLED = ("succeeded", "failed", "in_review", "requires_action")  # statuses that announce an event
TERMINAL = (*SETTLED, "dead_lettered")
SECRET = "whsec_crash_test"


# -- the stack, without its own worker --------------------------------------------------------------------------


def start_stack_without_worker(where: Path, extra_env: dict[str, str]) -> Stack:
    """`payments run --no-worker` with the test settings, ready to ingest (/health itself needs a live worker;
    readiness is what the ingest needs: database, queues)."""
    return start_stack(where, extra_env, args=("--no-worker",), ready="/health/ready")


def poll(
    predicate: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
    state: Callable[[], Any] | None = None,
) -> Any:
    """``predicate()`` once it is truthy; on timeout an AssertionError naming ``what`` and showing ``state()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}" + (f": {state()}" if state else "")
            )
        time.sleep(interval)


# -- workers that can be killed ---------------------------------------------------------------------------------


@dataclass
class WorkerPool:
    """``payments worker -p 1`` processes (one process each, so SIGKILL takes the whole worker down)."""

    env: dict[str, str]
    log_dir: Path
    receiver: WebhookReceiver
    processes: list[ManagedProcess] = field(default_factory=list)
    #: (monotonic time, worker name) of every SIGKILL.
    kills: list[tuple[float, str]] = field(default_factory=list)

    def spawn(self) -> ManagedProcess:
        name = f"worker-{len(self.processes)}"
        worker = ManagedProcess(
            name,
            payments_argv("worker", "--processes", "1"),
            # Its own webhook URL, so the receiver knows which worker made each delivery.
            env={**self.env, "PAYMENTS_MERCHANT_WEBHOOK_URL": self.receiver.url_for(name)},
            cwd=ROOT,
            log=self.log_dir / f"{name}.log",
        )
        self.processes.append(worker.start())
        return worker

    def alive(self) -> list[ManagedProcess]:
        return [p for p in self.processes if p.alive()]

    def kill_and_replace(self, rng: random.Random) -> None:
        victim = rng.choice(self.alive())
        victim.kill()
        self.kills.append((time.monotonic(), victim.name))
        self.spawn()

    def crashed(self) -> list[int | None]:
        """Exit codes of workers that died on their own (not killed by the test, not stopped)."""
        return [p.returncode for p in self.processes if p.returncode not in (None, 0, -signal.SIGKILL)]

    def stop(self) -> None:
        stop_all(self.processes, grace=30)


def chaos(pool: WorkerPool, rng: random.Random, stop: threading.Event) -> None:
    """Kill a random worker every 0.5–1.5 s and start a replacement at once, ``KILLS`` times."""
    while len(pool.kills) < KILLS and not stop.wait(rng.uniform(*KILL_EVERY)):
        pool.kill_and_replace(rng)


# -- the traffic ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    body: dict[str, Any]
    expected: str  # the job's status when nothing goes wrong
    key: str = field(default_factory=lambda: uuid.uuid4().hex)


COUNTRIES = ("IE", "FR", "DE", "IT", "ES", "NL", "BE", "PL", "SE", "AT", "PT", "FI", "US", "GB", "CH")


def plan_payments(rng: random.Random) -> list[Planned]:
    """A realistic mix: mostly successes, some card declines, fraud declines, reviews and 3-D Secure."""
    customers = [
        {"id": f"cus_crash_{i:03d}", "email": f"buyer{i}@example.com", "country": rng.choice(COUNTRIES)}
        for i in range(CUSTOMERS)
    ]
    # At most PER_CUSTOMER payments each, so no customer trips the velocity rule (review above 10 a minute).
    slots = [c for c in customers for _ in range(PER_CUSTOMER)]
    rng.shuffle(slots)
    plans: list[Planned] = []
    for slot in slots[:PAYMENTS]:
        customer = dict(slot)
        body: dict[str, Any] = {
            "customer": customer,
            "amount": rng.randrange(500, 25_000),
            "currency": "EUR",
            "payment_method": rng.choice(("pm_card_visa", "pm_card_mastercard", "pm_card_visa_debit")),
            "tax_behavior": rng.choice(("exclusive", "inclusive")),
            "description": "crash-safety test",
        }
        roll = rng.random()
        expected = "succeeded"
        if roll < 0.08:
            body["payment_method"] = "pm_card_chargeDeclinedInsufficientFunds"
            expected = "failed"
        elif roll < 0.12:
            body["payment_method"] = "pm_card_chargeDeclined"
            expected = "failed"
        elif roll < 0.15:
            customer["email"] = f"{customer['id']}@fraud.test"  # README: fraud rules decline this domain
            expected = "failed"
        elif roll < 0.18:
            body["amount"] = 600_000  # above EUR 5,000.00: fraud review
            expected = "in_review"
        elif roll < 0.21:
            body["payment_method"] = "pm_card_threeDSecure2Required"
            expected = "requires_action"
        plans.append(Planned(body, expected))
    return plans


def submit(client: httpx.Client, token: str, plan: Planned) -> str:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": plan.key}
    for _ in range(20):
        answer = client.post("/v1/payments", json=plan.body, headers=headers)
        if answer.status_code == 202:
            return str(answer.json()["id"])
        if answer.status_code not in (409, 503):  # in flight / briefly unavailable: the same key again is safe
            raise AssertionError(f"payment refused: {answer.status_code} {answer.text}")
        time.sleep(0.2)
    raise AssertionError(f"payment not accepted after retries: {answer.status_code} {answer.text}")


def all_jobs(client: httpx.Client, token: str) -> dict[str, dict[str, Any]]:
    """Every job, through the public listing (cursor pagination)."""
    jobs: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/jobs", params=params, headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200, page.text
        body = page.json()
        jobs.update({j["id"]: j for j in body["data"]})
        cursor = body.get("next_cursor")
        if not body["has_more"] or not cursor:
            return jobs


# -- the test ------------------------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as r:
        yield r


@pytest.fixture
def crash_stack(receiver: WebhookReceiver) -> Iterator[Stack]:
    import shutil

    where = stack_dir()
    stack = start_stack_without_worker(
        where,
        {
            "PAYMENTS_SQS_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_SECONDS),
            "PAYMENTS_SQS_HEARTBEAT_SECONDS": "1",
            "PAYMENTS_MERCHANT_WEBHOOK_URL": receiver.url,
            "PAYMENTS_MERCHANT_WEBHOOK_SECRET": SECRET,
        },
    )
    yield stack
    code = stop_stack(stack)
    assert code == 0, stack.log()[-3000:]
    shutil.rmtree(where, ignore_errors=True)


def queue_counts(sqs: Any, name: str) -> dict[str, int]:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "visible": int(attrs["ApproximateNumberOfMessages"]),
        "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        "visibility": int(attrs["VisibilityTimeout"]),
    }


@pytest.mark.timeout(360)  # 240 payments through a SIGKILL storm: about 90 s alone, more beside the rest of the suite
def test_sigkilled_workers_charge_book_and_notify_each_payment_once(
    crash_stack: Stack, receiver: WebhookReceiver
) -> None:
    stack = crash_stack
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(2**32))
    print(f"crash-safety seed: {seed} (CRASH_SEED={seed} replays the choices)")
    rng = random.Random(seed)
    runtime = json.loads((stack.data_dir / "runtime.json").read_text())
    sandbox = runtime["stripe_api_base"]
    sqs = boto3.client(
        "sqs",
        endpoint_url=runtime["local_aws_url"],
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    db = sa.create_engine(runtime["database_url"])
    # `payments run` provisioned the queues with the configured VisibilityTimeout (notifications: capped by it).
    assert queue_counts(sqs, "payments.fifo")["visibility"] == VISIBILITY_SECONDS
    assert queue_counts(sqs, "notifications")["visibility"] == VISIBILITY_SECONDS
    # Charges take 30–80 ms at "Stripe", so kills often land while one is in flight.
    knobs = httpx.post(f"{sandbox}/_sim/config", json={"latency_ms": 30, "latency_jitter_ms": 50}, timeout=10)
    assert knobs.status_code == 200, knobs.text

    pool = WorkerPool(stack.env, stack.data_dir.parent, receiver)
    plans = plan_payments(rng)
    stop_chaos = threading.Event()
    chaos_thread = threading.Thread(target=chaos, args=(pool, rng, stop_chaos), name="chaos", daemon=True)
    token = stack.token("operator")
    started = time.monotonic()
    try:
        for _ in range(WORKERS):
            pool.spawn()
        poll(
            lambda: httpx.get(f"{stack.ingest_url}/health", timeout=5).status_code == 200,
            timeout=60,
            what="a live worker",
        )
        chaos_thread.start()
        with httpx.Client(base_url=stack.ingest_url, timeout=30) as client:
            # Submit in waves spread over SUBMIT_SECONDS, four at a time, while the chaos thread kills workers.
            job_of: dict[str, str] = {}
            wave = 20
            with ThreadPoolExecutor(4) as executor:
                for start in range(0, len(plans), wave):
                    batch = plans[start : start + wave]
                    for plan, job_id in zip(
                        batch, executor.map(lambda p: submit(client, token, p), batch), strict=True
                    ):
                        job_of[plan.key] = job_id
                    time.sleep(SUBMIT_SECONDS * wave / len(plans))
            # A replayed request (same key, same body) answers the same job: no second job, no second charge.
            for plan in plans[:10]:
                assert submit(client, token, plan) == job_of[plan.key]
            assert len(set(job_of.values())) == len(plans)
            expected = {job_of[p.key]: p.expected for p in plans}
            plan_of = {job_of[p.key]: p for p in plans}

            # Every job terminal — ours, and the webhook jobs the sandbox's own events create.  A message whose third
            # receive died with its worker is redriven by SQS to the DLQ with no reason written; the periodic DLQ
            # sweep records it (and marks its job dead_lettered): run the sweep on demand instead of every 60 s.
            last_sweep = 0.0

            def sweep_if(*dlqs: str) -> None:
                nonlocal last_sweep
                waiting = any(queue_counts(sqs, name)["visible"] for name in dlqs)
                if waiting and time.monotonic() - last_sweep > 5:
                    stack.payments("scheduler", "--once")
                    last_sweep = time.monotonic()

            def settled() -> dict[str, dict[str, Any]] | None:
                jobs = all_jobs(client, token)
                if set(expected) <= set(jobs) and all(j["status"] in TERMINAL for j in jobs.values()):
                    return jobs
                sweep_if("payments-dlq.fifo", "webhooks-dlq.fifo")
                return None

            jobs = poll(
                settled,
                timeout=75,
                what="every job to reach a terminal status",
                interval=0.5,
                state=lambda: Counter((j["kind"], j["status"]) for j in all_jobs(client, token).values()),
            )
            processed = time.monotonic() - started
            stop_chaos.set()
            chaos_thread.join(timeout=30)
            # Every event announced, delivered — or its notification message dead-lettered after three receives
            # that died with their workers (the catalogue's maxReceiveCount holds for `notifications` too) — and
            # every stranded notification message back and handled, so a duplicate would have arrived by now.
            events = {f"{job_id}:job.{job['status']}" for job_id, job in jobs.items() if job["status"] in SETTLED}

            def notification_state() -> dict[str, Any]:
                with db.connect() as conn:
                    unrelayed = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE relayed_at IS NULL")).scalar()
                return {
                    "undelivered": sorted(events - set(receiver.counts()) - set(dead_lettered_events(db))),
                    "unrelayed": unrelayed,
                    "queue": queue_counts(sqs, "notifications"),
                    "dlq": queue_counts(sqs, "notifications-dlq"),
                }

            def quiet() -> bool:
                now = notification_state()
                if now["undelivered"]:
                    sweep_if("notifications-dlq")
                queue = now["queue"]
                return (
                    not now["undelivered"] and not now["unrelayed"] and not queue["visible"] and not queue["in_flight"]
                )

            poll(
                quiet,
                timeout=45,
                what="every event delivered and the notifications queue drained",
                interval=0.5,
                state=notification_state,
            )
    finally:
        stop_chaos.set()
        if chaos_thread.is_alive():
            chaos_thread.join(timeout=30)
        pool.stop()
    elapsed = time.monotonic() - started

    # -- what happened ------------------------------------------------------------------------------------------
    payments = {job_id: job for job_id, job in jobs.items() if job_id in expected}
    statuses = Counter(j["status"] for j in payments.values())
    others = Counter((j["kind"], j["status"]) for job_id, j in jobs.items() if job_id not in expected)
    intents = httpx.get(f"{sandbox}/_sim/payment_intents", timeout=30).json()["data"]
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pi in intents:
        by_job[str((pi.get("metadata") or {}).get("job_id"))].append(pi)
    with db.connect() as conn:
        booked = {
            r.job_id: r.n
            for r in conn.execute(sa.text("SELECT job_id, count(*) AS n FROM ledger_transactions GROUP BY job_id"))
        }
        dead = {
            r.job_id: r.error_class
            for r in conn.execute(
                sa.text("SELECT job_id, error_class FROM dead_letters WHERE queue <> 'notifications'")
            )
        }
        final = list(conn.execute(sa.text("SELECT id, status, updated_at FROM jobs")))
    finished_at = {r.id: r.updated_at for r in final}
    # Events judged against every job's status now: a webhook job the sandbox's late events made after the jobs
    # were listed announces too, and must announce its own status.
    final_events = {f"{r.id}:job.{r.status}" for r in final if r.status in SETTLED}
    # Charged by a worker that died before recording it, finished by another through Stripe's idempotent replay:
    # the job settled seconds (a visibility timeout) after its PaymentIntent was made.
    charged_then_killed = sum(
        1
        for job_id, job in payments.items()
        if job["status"] == "succeeded"
        and any(
            pi["status"] == "succeeded" and finished_at[job_id].timestamp() - pi["created"] >= 3
            for pi in by_job[job_id]
        )
    )
    deliveries = receiver.deliveries()
    counts = Counter(d.event_id for d in deliveries)
    dead_notifications = dead_lettered_events(db)
    lost_notifications = events & set(dead_notifications)
    print(
        f"{len(payments)} payments, {len(pool.kills)} SIGKILLs, {len(pool.processes)} worker processes; "
        f"payment statuses {dict(statuses)}; other jobs {dict(others)}; "
        f"{charged_then_killed} charged by a worker that was then killed; "
        f"{len(deliveries)} webhook deliveries, {sum(n - 1 for n in counts.values())} repeated, "
        f"{len(lost_notifications)} dead-lettered; processed in {processed:.1f}s, all done in {elapsed:.1f}s"
    )

    # -- the promise --------------------------------------------------------------------------------------------
    assert len(pool.kills) == KILLS, "the chaos did not run its course"
    assert pool.crashed() == [], "a worker died without being killed (see the worker logs)"
    for job_id, job in payments.items():
        # Each job ends as its request decides: a SIGKILL storm dead-letters no healthy job (receives that died
        # with their workers spend no attempt of the job, and SQS's redrive waits for 20 of them).
        assert job["status"] != "dead_lettered", (job, dead.get(job_id))
        assert job["status"] == expected[job_id], (job.get("fraud"), job.get("error"), plan_of[job_id].body)
        succeeded = [pi["id"] for pi in by_job.get(job_id, []) if pi["status"] == "succeeded"]
        assert len(succeeded) <= 1, f"job {job_id} ({job['status']}) charged {len(succeeded)} times: {succeeded}"
        if job["status"] == "succeeded":
            assert len(succeeded) == 1, f"succeeded job {job_id} has no successful charge"
            assert job["stripe"]["payment_intent"] == succeeded[0]
            assert by_job[job_id][0]["amount"] == job["amounts"]["total"]
            assert booked.get(job_id) == 1 and job["ledger_transaction"], (job, booked.get(job_id))
        elif job["status"] != "dead_lettered":
            assert succeeded == [], f"job {job_id} is {job['status']} yet was charged"
            assert job_id not in booked
    assert set(by_job) <= set(payments), f"PaymentIntents of no job of ours: {set(by_job) - set(payments)}"
    assert stack.payments("ledger", "verify").returncode == 0
    assert receiver.rejected == []
    announced = events | final_events  # what the jobs had when they settled, and what every job has now
    assert set(counts) <= announced, f"events for a status their job never had: {set(counts) - announced}"
    # A copy of a delivered event can still be taken through three receives by workers that were killed while
    # holding it (SQS counts every receive); that copy is harmless — a replay finds the event delivered and drops
    # it — but it must never be the trace of a delivery that failed.
    both = {e: dead_notifications[e] for e in lost_notifications & set(counts)}
    assert all(reason in STRANDED for reason in both.values()), f"delivered yet dead-lettered by a failure: {both}"
    unexplained = unexplained_repeats(deliveries, pool.kills)
    assert not unexplained, (
        "events delivered again with no kill to explain it:\n"
        + "\n".join(f"{event}: {seen}" for event, seen in unexplained.items())
        + f"\nkills (time, worker): {[(round(at, 3), name) for at, name in pool.kills]}"
    )


#: A worker records a delivery within milliseconds of the merchant's answer; a kill later than this after the
#: delivery cannot explain a repeat of it (seconds: generous, for a loaded 2-core machine).
KILL_EXPLAINS_WITHIN = 2.0


def unexplained_repeats(deliveries: list[Delivery], kills: list[tuple[float, str]]) -> dict[str, list[str]]:
    """Repeated deliveries of an event that the notifier's at-least-once window does not explain.

    A delivery may be repeated only when the worker that made it was SIGKILLed right after (the merchant had the
    POST, the worker died before marking the event delivered; merchants dedup on ``Payments-Event-Id``).  Any
    other repeat — two live workers delivering one event, a mark that did not hold — is a bug.
    """
    killed_at = {name: at for at, name in kills}
    by_event: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_event[d.event_id].append(d)
    unexplained: dict[str, list[str]] = {}
    for event_id, seen in by_event.items():
        seen.sort(key=lambda d: d.at)
        for d in seen[:-1]:
            death = killed_at.get(d.sender) if d.sender is not None else None
            # No lower bound: the sender was alive when it sent, and the receiver may handle a POST after that.
            if death is None or death - d.at > KILL_EXPLAINS_WITHIN:
                unexplained[event_id] = [f"by {x.sender} at {x.at:.3f}" for x in seen]
                break
    return unexplained


def dead_lettered_events(db: sa.Engine) -> dict[str, str]:
    """Event keys of notification messages recorded in the notifications DLQ, with the recorded error class."""
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT body, error_class FROM dead_letters WHERE queue = 'notifications'")).all()
    keys: dict[str, str] = {}
    for body, error_class in rows:
        try:
            keys[json.loads(body)["data"]["event_key"]] = error_class
        except (ValueError, KeyError, TypeError):
            continue
    return keys


#: Dead-letter reasons that mean "SIGKILLed workers took this message through its three receives", not "delivering
#: it failed": a message a worker held unstarted, or was delivering, when it was killed still burns a receive.
STRANDED = {"WorkerLost", "HeldBehindFailure"}
