"""Run the benchmark scenarios and print one table; write ``bench/results.json``.

Every figure is a ratio against a baseline measured in the same run, because the machine is shared and noisy:
absolute numbers from different runs are not comparable, ratios mostly are.  Benchmarks never assert on time.

Adding a scenario: write ``bench/<name>.py`` with ``NAME: str`` and ``run(quick: bool) -> list[Figure]``
(raise :class:`SkipScenario` to report "skipped"), then add its module to :data:`SCENARIOS`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Figure, Skipped, SkipScenario

__all__ = ["SCENARIOS", "SkipScenario", "main", "render", "run_scenarios"]

#: Scenario modules, in run order.  A module that does not exist (yet) is reported as skipped.
SCENARIOS: list[str] = [
    "bench.broker",
    "bench.local_sqs_depth",
    "bench.payments",
    "bench.scaling",
    "bench.ingest",
    "bench.settlement",
    "bench.prometheus",
]
RESULTS = Path(__file__).resolve().parent / "results.json"


def run_scenarios(names: list[str], quick: bool) -> tuple[list[Figure], list[Skipped]]:
    """Import and run each scenario module; collect its figures or why it was skipped."""
    figures: list[Figure] = []
    skipped: list[Skipped] = []
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                skipped.append(Skipped(name, "module not present"))
                continue
            raise
        run = getattr(module, "run", None)
        if run is None:
            skipped.append(Skipped(name, "module has no run(quick) function"))
            continue
        print(f"running {name} …", file=sys.stderr, flush=True)
        try:
            figures.extend(run(quick))
        except SkipScenario as exc:
            skipped.append(Skipped(name, str(exc)))
        except Exception as exc:  # one broken scenario must not lose the others' figures
            traceback.print_exc(file=sys.stderr)
            skipped.append(Skipped(name, f"failed: {type(exc).__name__}: {exc}"))
    return figures, skipped


def render(figures: list[Figure], skipped: list[Skipped]) -> str:
    """The table: scenario, metric, value, baseline, ratio, which direction is better."""
    header = ("scenario", "metric", "value", "baseline", "vs", "ratio", "better")
    rows = [header]
    for f in figures:
        ratio = "n/a" if f.ratio is None else f"{f.ratio:.3f}"
        rows.append(
            (
                f.scenario,
                f"{f.metric} ({f.unit})",
                f"{f.value:.3f}",
                f"{f.baseline:.3f}",
                f.baseline_name,
                ratio,
                f.better,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.extend(f"{s.scenario}: skipped ({s.reason})" for s in skipped)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads (smoke run)")
    parser.add_argument("--only", action="append", help="run only this scenario module (repeatable)")
    args = parser.parse_args(argv)
    names = [n if n.startswith("bench.") else f"bench.{n}" for n in (args.only or SCENARIOS)]
    started = time.time()
    figures, skipped = run_scenarios(names, args.quick)
    print(render(figures, skipped))
    payload: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(),
        "seconds": round(time.time() - started, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": args.quick,
        "figures": [f.as_dict() for f in figures],
        "skipped": [{"scenario": s.scenario, "reason": s.reason} for s in skipped],
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
