"""Generated POS batches with known totals and seeded faults (tests, the benchmark, demos).

:func:`generate` yields the CSV as byte chunks — constant memory for a million rows — and fills an
:class:`Expected` with what settling it must produce: counts, totals per terminal and currency, and rejects per
reason.  The same ``seed``, arguments and ``base`` always give the same bytes (the default ``base`` changes once a
day), so uploading a batch "again" is exact.

Faults, each at its own rate: malformed rows of several kinds, exact repeats of an earlier sale (``duplicate``),
voids of sales that never existed (``unknown_original_transaction``).  Refunds and voids refer to earlier sales of
the same terminal and currency; one that would take its sale's refunds and voids above the sale is expected to be
rejected (``refunds_exceed_original``), as the settlement's sum check decides.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipelines.settlement.rows import COLUMNS

_CURRENCIES = (("eur", 1), ("usd", 1), ("jpy", 1), ("kwd", 10))
_BAD = (
    ("invalid_amount", lambda r: r.__setitem__(4, "12.50")),
    ("amount_not_positive", lambda r: r.__setitem__(4, "0")),
    ("unsupported_currency", lambda r: r.__setitem__(5, "XYZ")),
    ("invalid_card_last4", lambda r: r.__setitem__(6, "12a4")),
    ("timestamp_missing_offset", lambda r: r.__setitem__(2, r[2][:19])),
    ("invalid_timestamp", lambda r: r.__setitem__(2, "yesterday")),
    ("unknown_type", lambda r: r.__setitem__(3, "chargeback")),
    ("malformed_row", lambda r: r.append("extra")),
)


@dataclass
class Expected:
    """What settling the generated batch must give (filled while the bytes are generated)."""

    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    sums: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (terminal, currency) → [s, r, v]
    bytes: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "duplicate": self.duplicate,
        }

    def totals(self) -> list[dict[str, object]]:
        """In the job's ``totals`` shape (without ``fee``), sorted by terminal then currency."""
        return [
            {"terminal_id": t, "currency": c, "sales": s, "refunds": r, "voids": v, "net": s - r - v}
            for (t, c), (s, r, v) in sorted(self.sums.items())
            if s or r or v
        ]


def generate(
    rows: int,
    *,
    seed: int = 7,
    terminals: int = 20,
    prefix: str = "T",
    bad_rate: float = 0.01,
    duplicate_rate: float = 0.005,
    unknown_void_rate: float = 0.002,
    reversal_rate: float = 0.05,
    base: datetime | None = None,
    expected: Expected | None = None,
    chunk_bytes: int = 1 << 20,
    malformed: bool = True,
) -> Iterator[bytes]:
    """Yield the CSV of a batch of ``rows`` data rows in chunks of about ``chunk_bytes``; fill ``expected``.

    ``prefix`` names the terminals (``{prefix}-000``…), so tests sharing a database never collide.  ``base`` is the
    time of the first row (default: midnight UTC two days ago); the rows are spread evenly over one day after it.
    ``malformed=False`` leaves out rows with a wrong number of columns (so that a plain ``COPY`` can load the file,
    for the benchmark).
    """
    faults = _BAD if malformed else tuple(f for f in _BAD if f[0] != "malformed_row")
    rng = random.Random(seed)
    exp = expected if expected is not None else Expected()
    # Midnight UTC two days ago: the same call gives the same bytes all day long.
    start = base or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    # All rows within one day of ``start`` (a million rows one second apart would run into the future).
    spacing = timedelta(microseconds=max(1, 86_400_000_000 // max(rows, 1)))
    recent: list[list[str]] = []  # a bounded window of valid sales to refund, void or repeat
    left: dict[str, int] = {}  # what is left to refund or void of each sale in ``recent``
    out: list[str] = [",".join(COLUMNS) + "\n"]
    size = len(out[0])
    for i in range(rows):
        exp.rows += 1
        roll = rng.random()
        ts = (start + i * spacing).isoformat()
        if roll < duplicate_rate and recent:
            row = list(rng.choice(recent))
            exp.duplicate += 1
        elif roll < duplicate_rate + unknown_void_rate and recent:
            sale = rng.choice(recent)
            row = [sale[0], f"{prefix}X{i:09d}", ts, "void", sale[4], sale[5], "4242", "", f"NOSALE{i:09d}"]
            exp.rejected["unknown_original_transaction"] += 1
        elif roll < duplicate_rate + unknown_void_rate + reversal_rate and recent:
            sale = rng.choice(recent)
            kind = "refund" if rng.random() < 0.7 else "void"
            amount = int(sale[4]) if kind == "void" else max(int(sale[4]) // 2 // _step(sale[5]), 1) * _step(sale[5])
            row = [sale[0], f"{prefix}R{i:09d}", ts, kind, str(amount), sale[5], sale[6], "", sale[1]]
            if amount > left[sale[1]]:
                exp.rejected["refunds_exceed_original"] += 1
            else:
                left[sale[1]] -= amount
                exp.accepted += 1
                cell = exp.sums.setdefault((sale[0], sale[5].lower()), [0, 0, 0])
                cell[1 if kind == "refund" else 2] += amount
        else:
            terminal = f"{prefix}-{rng.randrange(terminals):03d}"
            cur, step = _CURRENCIES[rng.randrange(len(_CURRENCIES))]
            amount = rng.randrange(1, 50_000) * step
            row = [terminal, f"{prefix}S{i:09d}", ts, "sale", str(amount), cur.upper(), f"{rng.randrange(10000):04d}",
                   f"A{rng.randrange(10**6):06d}", ""]  # fmt: skip
            if rng.random() < bad_rate:
                reason, spoil = faults[rng.randrange(len(faults))]
                spoil(row)
                exp.rejected[reason] += 1
            else:
                exp.accepted += 1
                exp.sums.setdefault((terminal, cur), [0, 0, 0])[0] += amount
                left[row[1]] = amount
                if len(recent) < 1000:
                    recent.append(row)
                else:
                    slot = rng.randrange(1000)
                    del left[recent[slot][1]]
                    recent[slot] = row
        line = ",".join(row) + "\n"
        out.append(line)
        size += len(line)
        if size >= chunk_bytes:
            data = "".join(out).encode()
            exp.bytes += len(data)
            yield data
            out, size = [], 0
    if out:
        data = "".join(out).encode()
        exp.bytes += len(data)
        yield data


def _step(cur: str) -> int:
    return 10 if cur.lower() == "kwd" else 1
