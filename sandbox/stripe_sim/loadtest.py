"""Measure the sandbox's throughput: ``python -m sandbox.stripe_sim.loadtest [--client sdk|httpx] ...``.

Starts a sandbox in a separate process (so client and server do not share one GIL) unless ``--url`` names a
running one, then drives PaymentIntent create-and-confirm calls from ``--workers`` client processes for
``--seconds`` and prints payments/s and requests/s.  ``--two-step`` creates then confirms (two requests per payment).
A figure, never an assertion: results depend on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import time
from typing import Any


def _worker(url: str, client_kind: str, seconds: float, two_step: bool, idempotent: bool, queue: Any) -> None:
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds
    create: dict[str, Any] = {
        "amount": 2000,
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "metadata": {"job_id": "bench"},
    }
    if client_kind == "sdk":
        import stripe

        client = stripe.StripeClient(api_key="sk_test_bench", base_addresses={"api": url})
        while time.perf_counter() < deadline:
            try:
                options: Any = {"idempotency_key": f"bench-{time.perf_counter_ns()}"} if idempotent else {}
                if two_step:
                    intent = client.v1.payment_intents.create(params=create, options=options)  # type: ignore[arg-type]
                    client.v1.payment_intents.confirm(intent.id)
                else:
                    confirmed: dict[str, Any] = {**create, "confirm": True}
                    client.v1.payment_intents.create(params=confirmed, options=options)  # type: ignore[arg-type]
                done += 1
            except stripe.StripeError:
                errors += 1
    else:
        import httpx

        from sandbox.stripe_sim.forms import encode_form

        body = encode_form({**create, "confirm": not two_step})
        headers = {"Authorization": "Bearer sk_test_bench", "Content-Type": "application/x-www-form-urlencoded"}
        with httpx.Client(base_url=url, headers=headers) as http:
            while time.perf_counter() < deadline:
                extra = {"Idempotency-Key": f"bench-{time.perf_counter_ns()}"} if idempotent else {}
                response = http.post("/v1/payment_intents", content=body, headers=extra)
                if two_step and response.status_code == 200:
                    response = http.post(f"/v1/payment_intents/{response.json()['id']}/confirm")
                if response.status_code == 200:
                    done += 1
                else:
                    errors += 1
    queue.put((done, errors))


def main(argv: list[str] | None = None) -> int:
    """Run the load test; prints one summary line.  Returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running sandbox (default: start one in a subprocess)")
    parser.add_argument("--client", choices=("sdk", "httpx"), default="sdk")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--two-step", action="store_true", help="create, then confirm (two requests)")
    parser.add_argument("--no-idempotency", action="store_true", help="send no Idempotency-Key")
    args = parser.parse_args(argv)
    server: subprocess.Popen[str] | None = None
    url = args.url
    if url is None:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "sim", "stripe", "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        match = re.search(r"http://127\.0\.0\.1:\d+", server.stdout.readline())
        if match is None:
            server.terminate()
            print("the sandbox did not start", file=sys.stderr)
            return 1
        url = match.group(0)
    try:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        procs = [
            ctx.Process(
                target=_worker,
                args=(url, args.client, args.seconds, args.two_step, not args.no_idempotency, queue),
            )
            for _ in range(args.workers)
        ]
        for proc in procs:
            proc.start()
        results = [queue.get() for _ in procs]
        for proc in procs:
            proc.join()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    payments = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    per_payment = 2 if args.two_step else 1
    print(
        f"client={args.client} workers={args.workers} seconds={args.seconds:g} "
        f"{'create+confirm (2 requests)' if args.two_step else 'create with confirm=true'}: "
        f"{payments / args.seconds:.0f} payments/s, {payments * per_payment / args.seconds:.0f} requests/s, "
        f"errors={errors}"
    )
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
