"""`payments worker`: run Dramatiq workers on the engine's SQS broker.

Options follow the ``dramatiq`` CLI in spirit: ``--processes``/``-p``, ``--threads``/``-t``, ``--queues``/``-Q``
and actor modules as arguments (default: the ``actors`` package).  The broker is built and installed *before*
the actor modules are imported, because actors bind to the global broker at import.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
import dramatiq

from cli.exiting import exit_now
from cli.output import fail
from config.settings import get_settings
from engine.broker.bootstrap import build_broker, install_broker
from engine.runtime.endpoints import NothingRunningError, resolve_endpoints

if TYPE_CHECKING:
    from engine.jobs.kind import JobKind

log = logging.getLogger(__name__)
DEFAULT_MODULES = ("actors",)
#: How long a stopping worker waits for running jobs (ms) before returning unstarted ones and exiting.
STOP_TIMEOUT_MS = 60_000


@click.command()
@click.option("-p", "--processes", type=click.IntRange(min=1), default=None, help="Worker processes.")
@click.option("-t", "--threads", type=click.IntRange(min=1), default=None, help="Worker threads per process.")
@click.option("-Q", "--queues", "queue_names", multiple=True, help="Only these queues (payments, payments.fifo…).")
@click.option("--pid-file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the pid here.")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None, help="Write logs here, not to stderr.")
@click.option(
    "--worker-shutdown-timeout",
    "shutdown_timeout_ms",
    type=click.IntRange(min=0),
    default=STOP_TIMEOUT_MS,
    show_default=True,
    help="Milliseconds a stopping worker waits for running jobs.",
)
@click.option("-v", "--verbose", count=True, help="Log at DEBUG.")
@click.argument("modules", nargs=-1)
def worker(
    processes: int | None,
    threads: int | None,
    queue_names: tuple[str, ...],
    pid_file: Path | None,
    log_file: str | None,
    shutdown_timeout_ms: int,
    verbose: int,
    modules: tuple[str, ...],
) -> None:
    """Consume the engine's queues with Dramatiq actors from MODULES (default: the actors package).

    The flags follow the ``dramatiq`` CLI: ``-p``, ``-t``, ``-Q``, ``--pid-file``, ``--log-file``,
    ``--worker-shutdown-timeout`` and ``-v``.
    """
    settings = get_settings()
    from engine.adapters.notifier import webhook_target_problem

    m = settings.merchant
    problem = webhook_target_problem(
        m.webhook_url.get_secret_value() if m.webhook_url else None,
        m.webhook_secret.get_secret_value() if m.webhook_secret else None,
    )
    if problem:
        fail(problem, code=2)
    processes = processes or settings.worker.processes
    threads = threads or settings.worker.threads
    from pipelines.registry import CATALOGUE

    for name in queue_names:
        try:
            CATALOGUE.resolve(name)
        except KeyError as exc:
            fail(str(exc.args[0]), code=2)
    try:
        resolve_endpoints(settings).require("sqs")
    except NothingRunningError as exc:
        fail(str(exc))
    mods = modules or DEFAULT_MODULES
    options = WorkerOptions(log_file=log_file, verbosity=verbose, shutdown_timeout_ms=shutdown_timeout_ms)
    if pid_file is not None:
        _write_pid_file(pid_file)
    try:
        if processes == 1:
            code = run_worker_process(mods, threads, queue_names, options=options)
        else:
            code = _supervise(processes, mods, threads, queue_names, options)
    finally:
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    exit_now(code)


@dataclass(frozen=True)
class WorkerOptions:
    """What ``payments worker`` passes to each worker process besides modules, threads and queues."""

    log_file: str | None = None
    verbosity: int = 0
    shutdown_timeout_ms: int = STOP_TIMEOUT_MS


def _write_pid_file(path: Path) -> None:
    """Write this process's pid to ``path``; exits 2 when a live process already holds it (as dramatiq does)."""
    try:
        other = int(path.read_text().strip())
    except (OSError, ValueError):
        other = None
    if other is not None and other != os.getpid():
        try:
            os.kill(other, 0)
        except ProcessLookupError:
            pass
        except PermissionError:
            fail(f"the pid file {path} names a running process ({other})", code=2)
        else:
            fail(f"the pid file {path} names a running process ({other})", code=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


def run_worker_process(
    modules: tuple[str, ...],
    threads: int,
    queue_names: tuple[str, ...],
    serve_metrics_here: bool = True,
    kinds: Iterable[JobKind] | None = None,
    options: WorkerOptions | None = None,
) -> int:
    """Run one worker in this process until SIGTERM/SIGINT, then stop gracefully; returns the exit code.

    ``kinds`` replaces the registry's job kinds (same names and queues, other stages: a benchmark's baseline); the
    actors run their jobs with this process's container (:func:`engine.runtime.container.use_process_container`).
    Raises :class:`engine.runtime.container.UnknownDependency` when a kind's factory names no provider.
    """
    from engine.adapters.notifier import webhook_target_problem
    from engine.audit.hooks import process_started
    from engine.runtime.container import bootstrap, use_process_container
    from engine.runtime.logs import configure_logging
    from engine.runtime.worker import Sidecars, dead_letter_sink, gate_stripe_queues, safe_queues

    options = options or WorkerOptions()
    settings = get_settings()
    m = settings.merchant
    problem = webhook_target_problem(
        m.webhook_url.get_secret_value() if m.webhook_url else None,
        m.webhook_secret.get_secret_value() if m.webhook_secret else None,
    )
    if problem:
        log.error("%s; the worker does not start", problem)
        return 2
    configure_logging(settings, log_file=options.log_file, verbosity=options.verbosity)
    container = bootstrap(settings, kinds)
    use_process_container(container)
    process_started(container, "worker")
    from engine.broker.log_context import LogContext
    from engine.runtime.metrics import serve as serve_metrics

    broker = build_broker(settings, container.endpoints, container.queues, dead_letter_sink(container))
    broker.add_middleware(LogContext())
    install_broker(broker, modules)
    if serve_metrics_here and not serve_metrics(settings.metrics.port):
        log.warning("metrics port %d is taken; this worker's metrics are not served", settings.metrics.port)
    resolve = container.queues.resolve
    wanted = {resolve(q).spec.base for q in queue_names}
    # Dramatiq whitelists by declared queue name; map the user's spelling (payments.fifo) to the declared one.
    whitelist = {q for q in broker.get_declared_queues() if not wanted or resolve(q).spec.base in wanted}
    if not whitelist:
        log.error("no actor consumes the requested queues (declared: %s)", sorted(broker.get_declared_queues()))
        broker.close()
        return 1
    whitelist = safe_queues(broker.sqs, whitelist, settings, container.queues)
    if not whitelist:
        log.error("every requested queue was refused by the queue check: nothing to consume")
        broker.close()
        return 1
    # Before the worker starts: its consumers are made at start and read their gate then.
    gated = gate_stripe_queues(container, broker)
    if gated:
        log.info("queues %s pause while the Stripe circuit breaker is open", sorted(gated))
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    broker.set_worker_threads(threads)  # the consumers hold at most threads + margin messages between them
    worker = dramatiq.Worker(broker, queues=whitelist, worker_threads=threads)
    worker.start()
    sidecars = Sidecars.start(container, broker)
    log.info("worker consuming %s with %d threads", sorted(whitelist), threads)
    stop.wait()
    log.info("stopping: finishing running jobs, returning prefetched messages")
    worker.stop(timeout=options.shutdown_timeout_ms)
    sidecars.stop()  # after the worker: the relay sends the events of the jobs that just finished
    broker.close()
    return 0


def _child(modules: tuple[str, ...], threads: int, queue_names: tuple[str, ...], options: WorkerOptions) -> None:
    # The supervisor serves the aggregated metrics of all children (multiprocess mode).
    sys.exit(run_worker_process(modules, threads, queue_names, serve_metrics_here=False, options=options))


def _supervise(
    processes: int,
    modules: tuple[str, ...],
    threads: int,
    queue_names: tuple[str, ...],
    options: WorkerOptions | None = None,
) -> int:
    """Start ``processes`` worker processes, forward SIGTERM/SIGINT to them, wait for all; worst exit code."""
    from engine.runtime.metrics import serve as serve_metrics

    if not serve_metrics(get_settings().metrics.port):
        log.warning("metrics port %d is taken; worker metrics are not served", get_settings().metrics.port)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited threads or sockets
    children = [
        ctx.Process(target=_child, args=(modules, threads, queue_names, options or WorkerOptions()), name=f"worker-{i}")
        for i in range(processes)
    ]
    for child in children:
        child.start()

    def _forward(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()  # SIGTERM: each child stops gracefully

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    from engine.runtime.metrics import forget_process

    for child in children:
        child.join()
        if child.pid is not None:
            forget_process(child.pid)  # its live gauges must not linger in the aggregated scrape
    return max((child.exitcode or 0) for child in children)
