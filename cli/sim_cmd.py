"""``payments sim``: local simulators of external services (``payments sim stripe``)."""

from __future__ import annotations

import click


@click.group()
def sim() -> None:
    """Local simulators of the services the engine depends on (the `[local]` extra)."""
    from cli.local_stack import require_local_stack

    require_local_stack("sim")


@sim.command("stripe")
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default: PAYMENTS_STRIPE_SIM_PORT, 12111).")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="SQLite file that keeps objects and idempotent answers across restarts (default: in memory).",
)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Added latency.")
@click.option(
    "--latency-jitter-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Random extra latency, uniform in [0, N].",
)
@click.option(
    "--fail-rate-500",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of API requests answered 500 (not saved under idempotency keys).",
)
@click.option(
    "--fail-rate-429",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of API requests answered 429.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of API requests whose connection is dropped without an answer.",
)
@click.option(
    "--fail-payment-method",
    "fail_payment_methods",
    multiple=True,
    help="A payment method whose every call answers 500 (repeatable).",
)
@click.option(
    "--webhook",
    "webhooks",
    multiple=True,
    help="Register a webhook endpoint URL for all events at start and print its signing secret.",
)
@click.option("--quiet", is_flag=True, help="Print no banner (`payments run` prints the stack's one banner).")
def stripe(
    port: int | None,
    state_file: str | None,
    latency_ms: float,
    latency_jitter_ms: float,
    fail_rate_500: float,
    fail_rate_429: float,
    drop_rate: float,
    fail_payment_methods: tuple[str, ...],
    webhooks: tuple[str, ...],
    quiet: bool,
) -> None:
    """Serve a Stripe-compatible API on 127.0.0.1 for the official SDK (until Ctrl-C).

    Point the engine at it with PAYMENTS_STRIPE_API_BASE=http://127.0.0.1:PORT and any sk_test_… key.
    Knobs can be changed while it runs: POST /_sim/config (JSON).  See docs/stripe-sandbox.md.
    """
    from config.settings import get_settings
    from sandbox.stripe_sim import StripeSandbox

    if port is None:
        port = get_settings().stripe.sim_port
    knobs = {
        "latency_ms": latency_ms,
        "latency_jitter_ms": latency_jitter_ms,
        "fail_rate_500": fail_rate_500,
        "fail_rate_429": fail_rate_429,
        "drop_rate": drop_rate,
        "fail_payment_methods": list(fail_payment_methods),
    }
    sandbox = StripeSandbox(host="127.0.0.1", port=port, state_file=state_file, knobs=knobs)
    try:
        url = sandbox.start()
    except OSError as exc:
        sandbox.stop()
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    for endpoint_url in webhooks:
        secret = _register_webhook(url, endpoint_url)
        click.echo(f"webhook endpoint {endpoint_url} registered; signing secret {secret}")
    if not quiet:
        click.echo(f"Stripe sandbox listening on {url} (state: {state_file or 'in memory'})")
        click.echo(f"  export PAYMENTS_STRIPE_API_BASE={url} PAYMENTS_STRIPE_API_KEY=sk_test_sandbox")
        click.echo(f"  knobs: curl -s {url}/_sim/config -d '{{\"latency_ms\": 50}}'")
    # serve_forever() restarts nothing: start() above is a no-op the second time.
    sandbox.serve_forever()


def _register_webhook(base_url: str, endpoint_url: str) -> str:
    import httpx

    response = httpx.post(
        f"{base_url}/v1/webhook_endpoints",
        data={"url": endpoint_url, "enabled_events[0]": "*"},
        headers={"Authorization": "Bearer sk_test_sandbox"},
    )
    if response.status_code != 200:
        raise click.ClickException(f"cannot register {endpoint_url}: {response.text}")
    secret = response.json()["secret"]
    assert isinstance(secret, str)
    return secret
