"""``payments demo``: send a realistic mix of payments through the running ingest and summarise the outcomes."""

from __future__ import annotations

import time

import click

from cli.output import EXIT_USAGE, fail, is_terminal, print_json, print_table


@click.command()
@click.option("--count", "-n", type=click.IntRange(1, 5000), default=50, show_default=True, help="Payments to send.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--url", default=None, help="Ingest URL (default: the running stack's).")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for jobs to settle.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the mix (same seed, same mix).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(count: int, concurrency: int, url: str | None, timeout: float, seed: int, as_json: bool) -> None:
    """Payments for customers across the EU (B2C, B2B reverse charge, inclusive/exclusive), declines, fraud
    reviews and 3-D Secure, through the real ingest; then a table of what each became."""
    from cli.local_stack import require_local_stack

    require_local_stack("demo")
    import httpx

    from config.settings import get_settings
    from engine.adapters.auth import mint
    from engine.runtime.endpoints import resolve_endpoints
    from sandbox.demo import mix, settle, submit

    settings = get_settings()
    base = url or resolve_endpoints(settings).ingest_url
    if not base:
        fail("no ingest is running (start it with `payments run`) and --url was not given")
    try:
        token = mint(settings, "payment_operator", sub="demo")
    except ValueError as exc:  # a deployment with its own identity provider: the demo cannot sign for it
        fail(str(exc), EXIT_USAGE)
    payments = mix(count, seed)
    show = is_terminal() and not as_json
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        try:
            client.get("/health/live").raise_for_status()
        except httpx.HTTPError as exc:
            fail(f"the ingest at {base} does not answer: {exc}")
        with click.progressbar(length=count, label="sending", hidden=not show) as bar:
            run = submit(client, payments, concurrency, lambda: bar.update(1))
        with click.progressbar(length=len(run.accepted), label="settling", hidden=not show) as bar:
            for n in settle(client, run, timeout, time.sleep):
                bar.update(n)
    rows = run.summary()
    if as_json:
        print_json({"accepted": len(run.accepted), "refused": len(run.refused), "outcomes": rows})
    else:
        click.echo(f"\n{len(run.accepted)} accepted, {len(run.refused)} refused at ingest\n")
        print_table(rows, ["scenario", "status", "scheme", "jobs", "total_eur_cents"])
    unsettled = len(run.accepted) - len(run.final)
    if unsettled:
        fail(f"{unsettled} job(s) still not settled after {timeout:.0f}s")
