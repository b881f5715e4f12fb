"""Set-based settlement in PostgreSQL: per-chunk COPY + ``INSERT … SELECT … ON CONFLICT DO NOTHING``, and the
end-of-batch check of refunds and voids.  Every function writes on the caller's connection, inside its transaction.

Per chunk (:func:`copy_chunk` then :func:`settle_chunk`, one transaction with the job's checkpoint):

1. the chunk's rows, validated or rejected by :class:`pipelines.settlement.rows.RowValidator`, are COPYed into a
   temporary table dropped at commit;
2. one statement inserts the first valid row of every (terminal_id, transaction_id) into ``pos_transactions`` with
   ``ON CONFLICT DO NOTHING`` — the primary key turns a repeat of an earlier batch, an earlier chunk or an earlier
   row into a non-insert — records every rejected or not-inserted row in ``settlement_outcomes``, and returns the
   chunk's sums per terminal, currency and type.  Rows are inserted in key order, so two batches racing over the
   same transactions lock them in the same order and cannot deadlock.

At the end, in the ``post`` transaction:

* :func:`lock_originals` locks the sales the batch's refunds and voids name (``FOR UPDATE``, in key order), so two
  batches posting refunds of one sale are serialised and the second sees what the first kept and deleted;
* :func:`reject_unknown_originals` — one statement deletes the batch's refunds and voids whose original is not a
  sale of the same terminal (settled earlier or anywhere in this batch — so a refund may precede its sale in the
  file), in another currency, or smaller than the refund, records them as rejected and returns their sums;
* :func:`reject_excess_reversals` compares, per sale, the sum of its refunds and voids — of earlier batches and of
  this one — with the sale, and rejects this batch's rows that do not fit (``refunds_exceed_original``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from pipelines.settlement.rows import Staged

_CHUNK_TABLE = """
CREATE TEMPORARY TABLE settlement_chunk (
    row_no bigint NOT NULL,
    terminal_id text,
    transaction_id text,
    occurred_at timestamptz,
    type text,
    amount bigint,
    currency text,
    card_last4 text,
    auth_code text,
    original_transaction_id text,
    reason text
) ON COMMIT DROP
"""
_COPY = (
    "COPY settlement_chunk (row_no, terminal_id, transaction_id, occurred_at, type, amount, currency, card_last4, "
    "auth_code, original_transaction_id, reason) FROM STDIN"
)

_SETTLE_CHUNK = sa.text(
    """
WITH inserted AS (
    INSERT INTO pos_transactions (terminal_id, transaction_id, job_id, row_no, occurred_at, type, amount, currency,
                                  card_last4, auth_code, original_transaction_id)
    SELECT DISTINCT ON (terminal_id, transaction_id)
           terminal_id, transaction_id, :job_id, row_no, occurred_at, type, amount, currency,
           card_last4, auth_code, original_transaction_id
    FROM settlement_chunk
    WHERE reason IS NULL
    ORDER BY terminal_id, transaction_id, row_no
    ON CONFLICT DO NOTHING
    RETURNING row_no, terminal_id, currency, type, amount
), others AS (
    INSERT INTO settlement_outcomes (job_id, row_no, terminal_id, transaction_id, outcome, reason)
    SELECT :job_id, c.row_no, c.terminal_id, c.transaction_id,
           CASE WHEN c.reason IS NULL THEN 'duplicate' ELSE 'rejected' END,
           coalesce(c.reason, 'duplicate')
    FROM settlement_chunk c
    WHERE c.reason IS NOT NULL OR NOT EXISTS (SELECT 1 FROM inserted i WHERE i.row_no = c.row_no)
    ON CONFLICT DO NOTHING
    RETURNING outcome
)
SELECT 'settled' AS what, terminal_id, currency, type, count(*) AS n, sum(amount) AS amount
FROM inserted GROUP BY terminal_id, currency, type
UNION ALL
SELECT outcome, NULL, NULL, NULL, count(*), 0 FROM others GROUP BY outcome
"""
)

_REJECT_UNKNOWN_ORIGINALS = sa.text(
    """
WITH bad AS (
    SELECT p.terminal_id, p.transaction_id, p.row_no, p.type, p.currency, p.amount,
           CASE WHEN o.transaction_id IS NULL OR o.type <> 'sale' THEN 'unknown_original_transaction'
                WHEN o.currency <> p.currency THEN 'original_currency_mismatch'
                ELSE 'exceeds_original_amount' END AS reason
    FROM pos_transactions p
    LEFT JOIN pos_transactions o
           ON o.terminal_id = p.terminal_id AND o.transaction_id = p.original_transaction_id
    WHERE p.job_id = :job_id AND p.type <> 'sale'
      AND (o.transaction_id IS NULL OR o.type <> 'sale' OR o.currency <> p.currency OR p.amount > o.amount)
), removed AS (
    DELETE FROM pos_transactions d USING bad
    WHERE d.terminal_id = bad.terminal_id AND d.transaction_id = bad.transaction_id AND d.job_id = :job_id
    RETURNING d.row_no
), recorded AS (
    INSERT INTO settlement_outcomes (job_id, row_no, terminal_id, transaction_id, outcome, reason)
    SELECT :job_id, row_no, terminal_id, transaction_id, 'rejected', reason FROM bad
    RETURNING row_no
)
SELECT terminal_id, currency, type, count(*) AS n, sum(amount) AS amount,
       (SELECT count(*) FROM removed) AS removed, (SELECT count(*) FROM recorded) AS recorded
FROM bad GROUP BY terminal_id, currency, type
"""
)


_LOCK_ORIGINALS = sa.text(
    """
SELECT o.terminal_id, o.transaction_id
FROM pos_transactions o
WHERE (o.terminal_id, o.transaction_id) IN (
    SELECT p.terminal_id, p.original_transaction_id FROM pos_transactions p
    WHERE p.job_id = :job_id AND p.type <> 'sale'
)
ORDER BY o.terminal_id, o.transaction_id
FOR UPDATE OF o
"""
)

# The batch's refunds and voids of every sale whose refunds and voids (earlier batches' plus this one's) add up to
# more than the sale, with the sale's amount and what earlier batches already took from it.
_OVER_SALE = sa.text(
    """
WITH mine AS (
    SELECT terminal_id, transaction_id, original_transaction_id AS original, row_no, type, amount, currency
    FROM pos_transactions
    WHERE job_id = :job_id AND type <> 'sale'
), sums AS (
    SELECT terminal_id, original, sum(amount) AS mine FROM mine GROUP BY terminal_id, original
), over AS (
    SELECT s.terminal_id, s.original, o.amount AS sale, x.others
    FROM sums s
    JOIN pos_transactions o ON o.terminal_id = s.terminal_id AND o.transaction_id = s.original
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(e.amount), 0) AS others FROM pos_transactions e
        WHERE e.terminal_id = s.terminal_id AND e.original_transaction_id = s.original AND e.type <> 'sale'
          AND e.job_id <> :job_id
          -- Only batches that posted: an unposted batch's refunds may still be rejected by its own post, which
          -- counts this batch's (posted by then) — under the sale's lock, the posts take turns.
          AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job_id AND j.stage_results -> 'post' IS NOT NULL)
    ) x
    WHERE x.others + s.mine > o.amount
)
SELECT v.terminal_id, v.original, v.sale, v.others, m.transaction_id, m.row_no, m.type, m.amount, m.currency
FROM over v JOIN mine m ON m.terminal_id = v.terminal_id AND m.original = v.original
ORDER BY v.terminal_id, v.original, m.row_no
"""
)

_REJECT_ROWS = sa.text(
    """
WITH gone AS (
    DELETE FROM pos_transactions d
    USING unnest(CAST(:terminals AS text[]), CAST(:txns AS text[])) AS r(terminal_id, transaction_id)
    WHERE d.job_id = :job_id AND d.terminal_id = r.terminal_id AND d.transaction_id = r.transaction_id
    RETURNING d.row_no, d.terminal_id, d.transaction_id
)
INSERT INTO settlement_outcomes (job_id, row_no, terminal_id, transaction_id, outcome, reason)
SELECT :job_id, row_no, terminal_id, transaction_id, 'rejected', :reason FROM gone
"""
)

EXCESS_REASON = "refunds_exceed_original"


@dataclass
class Tally:
    """Running counts and sums of a batch: ``sums[terminal][currency][type]`` = [rows, minor units].

    Kept in the job's checkpoint after every chunk (JSON), so a resumed batch continues the same arithmetic.
    """

    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicate: int = 0
    sums: dict[str, dict[str, dict[str, list[int]]]] = field(default_factory=dict)

    def add(self, terminal: str, currency: str, kind: str, n: int, amount: int) -> None:
        cell = self.sums.setdefault(terminal, {}).setdefault(currency, {}).setdefault(kind, [0, 0])
        cell[0] += n
        cell[1] += amount

    def to_json(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicate": self.duplicate,
            "sums": self.sums,
        }

    @classmethod
    def from_json(cls, data: dict[str, object] | None) -> Tally:
        if not data:
            return cls()
        return cls(
            rows=int(data["rows"]),  # type: ignore[call-overload]
            accepted=int(data["accepted"]),  # type: ignore[call-overload]
            rejected=int(data["rejected"]),  # type: ignore[call-overload]
            duplicate=int(data["duplicate"]),  # type: ignore[call-overload]
            sums=data["sums"],  # type: ignore[arg-type]
        )

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "accepted": self.accepted, "rejected": self.rejected, "duplicate": self.duplicate}

    def totals(self) -> list[dict[str, object]]:
        """The job's ``totals``: per terminal and currency, the accepted sales, refunds and voids and
        ``net = sales - refunds - voids`` (minor units), sorted by terminal then currency; empty cells left out."""
        out: list[dict[str, object]] = []
        for terminal in sorted(self.sums):
            for cur in sorted(self.sums[terminal]):
                cells = self.sums[terminal][cur]
                sales, refunds, voids = (cells.get(k, [0, 0])[1] for k in ("sale", "refund", "void"))
                if not (sales or refunds or voids):
                    continue
                out.append(
                    {
                        "terminal_id": terminal,
                        "currency": cur,
                        "sales": sales,
                        "refunds": refunds,
                        "voids": voids,
                        "net": sales - refunds - voids,
                    }
                )
        return out


def copy_chunk(conn: sa.Connection, blocks: Iterable[str]) -> None:
    """COPY ``blocks`` (rows in COPY text format, see :func:`copy_line`) into a fresh temporary chunk table,
    dropped at commit."""
    # The chunk's DISTINCT ON sort (50k rows, ~15 MB) spills to disk under the default 4 MB; this transaction only.
    conn.execute(sa.text("SET LOCAL work_mem = '64MB'"))
    conn.execute(sa.text(_CHUNK_TABLE))
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(_COPY) as copy:
        for block in blocks:
            copy.write(block)


LINES_PER_BLOCK = 2000
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value.translate(_ESCAPES) if ("\\" in value or "\t" in value or "\n" in value or "\r" in value) else value


def copy_line(row: Staged) -> str:
    """One staged row as a line of PostgreSQL's COPY text format (tab-separated, ``\\N`` for NULL, backslash,
    tab and line breaks escaped).  Formatting here instead of psycopg's ``write_row`` halves the Python cost per
    row; the validated columns (terminal id, type, currency, digits) cannot hold a character that needs escaping,
    the ids and a rejected row's raw values can."""
    row_no, terminal, txn, ts, kind, amount, cur, last4, auth, original, reason = row
    if reason is not None:
        return f"{row_no}\t{_text(terminal)}\t{_text(txn)}\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t{_text(reason)}\n"
    assert ts is not None
    return (
        f"{row_no}\t{terminal}\t{_text(txn)}\t{ts.isoformat()}\t{kind}\t{amount}\t{cur}\t{last4}\t"
        f"{_text(auth)}\t{_text(original)}\t\\N\n"
    )


def settle_chunk(conn: sa.Connection, job_id: str, tally: Tally) -> None:
    """Settle the copied chunk (see the module docstring) and add its outcome to ``tally`` (rows not included:
    the caller counts what it copied)."""
    for what, terminal, cur, kind, n, amount in conn.execute(_SETTLE_CHUNK, {"job_id": job_id}).all():
        if what == "settled":
            tally.accepted += n
            tally.add(terminal, cur, kind, n, int(amount))
        elif what == "rejected":
            tally.rejected += n
        else:
            tally.duplicate += n


def reject_unknown_originals(conn: sa.Connection, job_id: str, tally: Tally) -> int:
    """Reject the batch's refunds and voids without a matching sale (module docstring); moves them from accepted
    to rejected in ``tally`` and out of its sums.  Returns how many were rejected."""
    moved = 0
    for terminal, cur, kind, n, amount, removed, recorded in conn.execute(
        _REJECT_UNKNOWN_ORIGINALS, {"job_id": job_id}
    ).all():
        # Both CTEs act on exactly the rows of `bad`; a mismatch would mean the ledger and the report disagree.
        assert removed == recorded, (removed, recorded)
        tally.add(terminal, cur, kind, -n, -int(amount))
        moved += n
    tally.accepted -= moved
    tally.rejected += moved
    return moved


def lock_originals(conn: sa.Connection, job_id: str) -> int:
    """Lock (``FOR UPDATE``) every settled sale that one of the batch's refunds or voids names, in key order (two
    batches lock shared sales in the same order, so they cannot deadlock).  Held until the ``post`` transaction
    ends: another batch's post of refunds of the same sale waits, then sees this batch's outcome.  Must run before
    :func:`reject_excess_reversals`, as a statement of its own (that statement's snapshot then includes whatever a
    batch that held the lock before committed).  Returns how many sales were locked."""
    return len(conn.execute(_LOCK_ORIGINALS, {"job_id": job_id}).all())


def reject_excess_reversals(conn: sa.Connection, job_id: str, tally: Tally) -> int:
    """Reject the batch's refunds and voids that would take the refunds and voids of their sale above the sale.

    Per sale, the refunds and voids of batches that posted before count first (a batch still ingesting or waiting
    for the lock counts this one's when it posts), then this batch's in row order: a row is kept while the running
    sum stays within the sale, otherwise rejected with ``refunds_exceed_original`` (a later smaller row that still
    fits is kept).  Run after :func:`lock_originals` and :func:`reject_unknown_originals` (the originals are known
    sales in the same currency).  Moves the rejected rows from accepted to rejected in ``tally`` and out of its
    sums; returns how many."""
    terminals: list[str] = []
    txns: list[str] = []
    used: dict[tuple[str, str], int] = {}
    for terminal, original, sale, others, txn, _row, kind, amount, cur in conn.execute(
        _OVER_SALE, {"job_id": job_id}
    ).all():
        key = (terminal, original)
        taken = used.setdefault(key, int(others))
        if taken + amount <= sale:
            used[key] = taken + amount
            continue
        terminals.append(terminal)
        txns.append(txn)
        tally.add(terminal, cur, kind, -1, -int(amount))
    if not txns:
        return 0
    result = conn.execute(
        _REJECT_ROWS, {"job_id": job_id, "terminals": terminals, "txns": txns, "reason": EXCESS_REASON}
    )
    # Every row chosen is this batch's and was settled a statement ago under the sale's lock.
    assert result.rowcount == len(txns), (result.rowcount, len(txns))
    tally.accepted -= len(txns)
    tally.rejected += len(txns)
    return len(txns)


def first_rejects(conn: sa.Connection, job_id: str, limit: int = 1000) -> list[dict[str, object]]:
    """The job's first ``limit`` rejected rows by row number: ``[{row, transaction_id, reason}]``."""
    rows = conn.execute(
        sa.text(
            "SELECT row_no, transaction_id, reason FROM settlement_outcomes "
            "WHERE job_id = :job_id AND outcome = 'rejected' ORDER BY row_no LIMIT :limit"
        ),
        {"job_id": job_id, "limit": limit},
    ).all()
    return [{"row": r, "transaction_id": t, "reason": why} for r, t, why in rows]


def outcomes(
    conn: sa.Connection, job_id: str, outcome: str | None = None
) -> Iterator[tuple[int, str | None, str | None, str, str]]:
    """A server-side cursor over the job's not-settled rows in row order (``outcome`` filters): ``(row_no,
    terminal_id, transaction_id, outcome, reason)``.  Constant memory however many there are."""
    query = (
        "SELECT row_no, terminal_id, transaction_id, outcome, reason FROM settlement_outcomes WHERE job_id = :job_id"
    )
    params: dict[str, object] = {"job_id": job_id}
    if outcome is not None:
        query += " AND outcome = :outcome"
        params["outcome"] = outcome
    query += " ORDER BY row_no"
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(sa.text(query), params)
    for row_no, terminal, txn, what, reason in result:
        yield int(row_no), terminal, txn, what, reason
