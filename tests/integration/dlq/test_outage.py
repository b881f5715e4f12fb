"""Issue 13, item 6: a Stripe outage does not dead-letter the backlog.

Payments are queued while the sandbox is down; a real worker (the payment pipeline on the engine's broker, its
payments queue gated by the Stripe circuit breaker as `payments worker` gates it) runs through the outage.  The
breaker opens, the worker stops taking payments and gives back what it holds; no job spends an attempt.  After
recovery every payment succeeds with exactly one charge, and nothing was dead-lettered.

This is the scaled-down version (seconds, tens of payments).  The 5-minute, 200-payment run is the same test with
``OUTAGE_PAYMENTS=200 OUTAGE_SECONDS=300`` (docs/operations.md quotes its figures).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import dramatiq
import httpx
import sqlalchemy as sa

from engine.db.tables import dead_letters, jobs
from engine.runtime.container import Container
from engine.runtime.worker import gate_stripe_queues
from tests.integration.dlq.conftest import depth, intents, job, sim, submit, wait_until

PAYMENTS = int(os.environ.get("OUTAGE_PAYMENTS", "24"))
OUTAGE_SECONDS = float(os.environ.get("OUTAGE_SECONDS", "12"))


def _stats(stripe_sim: Any) -> dict[str, int]:
    return dict(httpx.get(f"{stripe_sim.base_url}/_sim/stats").json())


def test_stripe_outage_dead_letters_nothing_and_every_payment_succeeds_after(
    payment_container: Container, stripe_sim: Any, start_worker: Callable[[], dramatiq.Worker]
) -> None:
    c = payment_container
    sim(stripe_sim, down=True)
    queued = [submit(c, customer=f"cus_{uuid.uuid4().hex[:8]}") for _ in range(PAYMENTS)]
    assert "payments" in gate_stripe_queues(c, c.broker)
    start_worker()
    breaker = c.stripe.breaker
    wait_until(lambda: breaker.state != "closed", timeout=60)
    opened = time.monotonic()  # the outage is measured from here (a loaded machine takes a while to get here)
    requests_at_open = _stats(stripe_sim)["requests"]
    states: Counter[str] = Counter()
    while time.monotonic() - opened < OUTAGE_SECONDS:
        states[breaker.admits()] += 1
        time.sleep(0.1)
    requests_in_outage = _stats(stripe_sim)["requests"] - requests_at_open
    early = {j: (s.status, s.error) for j in queued if (s := job(c, j)).status not in ("accepted", "processing")}
    assert not early, early
    # Open most of the time; the half-open probes are one request each (every 5 s).
    assert states["none"] > states["probe"] + states["all"]
    assert requests_in_outage <= 2 + OUTAGE_SECONDS / 5 * 2, requests_in_outage

    sim(stripe_sim, down=False)
    recovered = time.monotonic()
    wait_until(lambda: all(job(c, j).status == "succeeded" for j in queued), timeout=60 + PAYMENTS / 5)
    drained = time.monotonic() - recovered
    print(
        f"outage {OUTAGE_SECONDS:.0f}s, {PAYMENTS} payments: all succeeded {drained:.1f}s after recovery, "
        f"{requests_in_outage} Stripe requests while open"
    )

    for job_id in queued:
        assert [pi["status"] for pi in intents(stripe_sim, job_id)] == ["succeeded"]
    with c.db.connect() as conn:
        mine = dead_letters.c.queue == f"{c.settings.queue_prefix}payments.fifo"
        assert conn.execute(sa.select(sa.func.count()).where(mine)).scalar() == 0
        spent = conn.execute(sa.select(jobs.c.failed_attempts).where(jobs.c.id.in_(queued))).scalars().all()
    assert set(spent) == {0}  # an outage is not the jobs' failure
    assert depth(c, "payments-dlq.fifo") == 0
    wait_until(lambda: depth(c, "payments.fifo") == 0, timeout=20)
