"""A realistic mix of payments for `payments demo`: countries, B2C and B2B, inclusive and exclusive prices,
declines, fraud reviews and 3-D Secure — each outcome produced by the engine's documented rules, not faked."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

# Valid (format and check digits) VAT ids, one per country, for business customers.
VAT_IDS = {
    "DE": "DE136695976",
    "FR": "FR40303265045",
    "NL": "NL004495445B01",
    "IT": "IT00743110157",
    "ES": "ESA28015865",
    "AT": "ATU13585627",
    "BE": "BE0776091951",
    "PL": "PL5260250995",
    "SE": "SE556188840401",
    "IE": "IE6388047V",
}
COUNTRIES = [*VAT_IDS, "FI", "PT", "DK", "GR", "CZ", "HU", "RO", "US", "GB", "CH"]


@dataclass(frozen=True)
class DemoPayment:
    scenario: str
    body: dict[str, Any]


def mix(count: int, seed: int = 7) -> list[DemoPayment]:
    """``count`` payments: mostly approvals across EU states, with every other outcome represented."""
    rng = random.Random(seed)
    out: list[DemoPayment] = []
    for i in range(count):
        country = rng.choice(COUNTRIES)
        customer: dict[str, Any] = {
            "id": f"demo_{country.lower()}_{rng.randrange(10_000):04d}",
            "email": f"buyer{i}@example.com",
            "country": country,
        }
        body: dict[str, Any] = {
            "customer": customer,
            "amount": rng.choice([500, 1299, 2500, 4999, 12_000, 35_000]),
            "currency": "EUR",
            "payment_method": "pm_card_visa",
            "tax_behavior": rng.choice(["exclusive", "inclusive"]),
            "description": f"demo order {i}",
        }
        roll = i % 10
        scenario = "b2c"
        if roll in (1, 2) and country in VAT_IDS:
            scenario = "b2b"
            customer.update(type="business", vat_id=VAT_IDS[country])
        elif roll == 3:
            scenario = "decline"
            body["payment_method"] = rng.choice(
                [
                    "pm_card_chargeDeclinedInsufficientFunds",
                    "pm_card_chargeDeclined",
                    "pm_card_chargeDeclinedExpiredCard",
                ]
            )
        elif roll == 4 and i % 20 == 4:
            scenario = "review"
            body["amount"] = 750_000
        elif roll == 5 and i % 20 == 5:
            scenario = "fraud_decline"
            customer["email"] = f"buyer{i}@fraud.test"
        elif roll == 6 and i % 30 == 6:
            scenario = "3ds"
            body["payment_method"] = "pm_card_threeDSecure2Required"
        elif roll == 7:
            body["tax_category"] = "reduced"
        out.append(DemoPayment(scenario, body))
    return out


@dataclass
class DemoRun:
    accepted: list[tuple[DemoPayment, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[DemoPayment, int, dict[str, Any]]] = field(default_factory=list)
    final: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """Rows of ``{scenario, status, scheme, jobs, total}`` (total in cents of the settled amounts)."""
        counts: Counter[tuple[str, str, str]] = Counter()
        totals: Counter[tuple[str, str, str]] = Counter()
        for payment, job in self.accepted:
            done = self.final.get(job["id"], job)
            key = (payment.scenario, done["status"], (done.get("vat") or {}).get("scheme", "-"))
            counts[key] += 1
            totals[key] += (done.get("amounts") or {}).get("total", 0) if done["status"] == "succeeded" else 0
        return [
            {"scenario": s, "status": st, "scheme": sc, "jobs": n, "total_eur_cents": totals[(s, st, sc)]}
            for (s, st, sc), n in sorted(counts.items())
        ]


def submit(client: httpx.Client, payments: list[DemoPayment], concurrency: int, on_done: Callable[[], None]) -> DemoRun:
    """POST every payment (unique Idempotency-Key each) with ``concurrency`` threads."""
    run = DemoRun()

    def one(p: DemoPayment) -> None:
        response = client.post("/v1/payments", json=p.body, headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"})
        if response.status_code == 202:
            run.accepted.append((p, response.json()))
        else:
            run.refused.append((p, response.status_code, response.json()))
        on_done()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, payments))
    return run


def settle(client: httpx.Client, run: DemoRun, timeout: float, sleep: Callable[[float], None]) -> Iterator[int]:
    """Poll the accepted jobs until none is accepted/processing (or ``timeout``); yields how many settled."""
    import time

    deadline = time.monotonic() + timeout
    pending = {job["id"] for _, job in run.accepted}
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job.get("status") not in ("accepted", "processing"):
                run.final[job_id] = job
                pending.discard(job_id)
                yield 1
        if pending:
            sleep(0.5)
