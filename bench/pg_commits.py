"""Commits/s this PostgreSQL server sustains: the unit of docs/scaling.md's model.

    .venv/bin/python bench/pg_commits.py [--url postgresql://postgres@127.0.0.1:5432/test] [--threads 4] [--seconds 10]

A pgbench-like loop: each thread has its own connection and repeats "insert one row, commit" into a scratch table
(an ordinary logged table, so each commit waits for its WAL flush as the engine's do) for the given time; prints one
JSON line with the commits, the seconds and commits/s.  The table is dropped afterwards.  A stand-alone script, not
a harness scenario (it is not in bench/__main__.py's SCENARIOS).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid

import psycopg


def _worker(url: str, table: str, deadline: float, counts: list[int], index: int) -> None:
    """Insert and commit one row at a time until ``deadline``; store the number of commits in ``counts[index]``."""
    with psycopg.connect(url) as conn:
        n = 0
        while time.perf_counter() < deadline:
            conn.execute(f"INSERT INTO {table} (thread, n) VALUES (%s, %s)", (index, n))
            conn.commit()
            n += 1
        counts[index] = n


def measure(url: str, threads: int, seconds: float) -> dict[str, float]:
    """Run the loop on ``threads`` connections for ``seconds``; return commits, seconds and commits/s.

    Raises psycopg.Error when the server is unreachable or refuses the scratch table.
    """
    table = f"bench_commits_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, thread int NOT NULL, n bigint NOT NULL)")
    try:
        counts = [0] * threads
        started = time.perf_counter()
        deadline = started + seconds
        workers = [threading.Thread(target=_worker, args=(url, table, deadline, counts, i)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    total = sum(counts)
    return {
        "threads": threads,
        "commits": total,
        "seconds": round(elapsed, 3),
        "commits_per_s": round(total / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.url, args.threads, args.seconds)))


if __name__ == "__main__":
    main()
