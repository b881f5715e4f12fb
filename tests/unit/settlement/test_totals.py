"""The running tally's arithmetic and the generator's expectations (no I/O)."""

from __future__ import annotations

import io

from pipelines.settlement.generate import Expected, generate
from pipelines.settlement.rows import ByteCountingLines, RowValidator, csv_records, parse_header
from pipelines.settlement.store import Tally


def test_totals_net_and_order() -> None:
    t = Tally()
    t.add("T2", "eur", "sale", 2, 1000)
    t.add("T1", "usd", "sale", 1, 500)
    t.add("T1", "usd", "refund", 1, 200)
    t.add("T1", "usd", "void", 1, 100)
    t.add("T1", "eur", "void", 1, 50)
    t.add("T3", "eur", "sale", 1, 70)
    t.add("T3", "eur", "sale", -1, -70)  # settled, then taken back: nothing left to report
    assert t.totals() == [
        {"terminal_id": "T1", "currency": "eur", "sales": 0, "refunds": 0, "voids": 50, "net": -50},
        {"terminal_id": "T1", "currency": "usd", "sales": 500, "refunds": 200, "voids": 100, "net": 200},
        {"terminal_id": "T2", "currency": "eur", "sales": 1000, "refunds": 0, "voids": 0, "net": 1000},
    ]


def test_tally_survives_its_json_round_trip() -> None:
    import json

    t = Tally(rows=10, accepted=7, rejected=2, duplicate=1)
    t.add("T1", "eur", "sale", 7, 700)
    back = Tally.from_json(json.loads(json.dumps(t.to_json())))
    assert back == t and back.counts() == {"rows": 10, "accepted": 7, "rejected": 2, "duplicate": 1}
    assert Tally.from_json(None) == Tally()


def test_generated_batches_are_deterministic_and_match_their_expectations() -> None:
    from datetime import UTC, datetime

    base = datetime(2026, 11, 20, tzinfo=UTC)
    exp = Expected()
    data = b"".join(generate(3000, seed=3, expected=exp, chunk_bytes=1000, base=base))
    assert data == b"".join(generate(3000, seed=3, chunk_bytes=50_000, base=base))
    assert exp.bytes == len(data) and exp.rows == 3000
    assert exp.counts()["rows"] == exp.accepted + exp.duplicate + sum(exp.rejected.values())
    assert exp.duplicate > 0 and exp.rejected["unknown_original_transaction"] > 0
    # Every row-level fault the generator seeds is rejected by the validator with the reason it expects.
    records = csv_records(ByteCountingLines(io.BytesIO(data)))
    validator = RowValidator(parse_header(next(records)), datetime(2026, 11, 22, tzinfo=UTC))
    reasons: dict[str, int] = {}
    for n, fields in enumerate(records, 1):
        reason = validator.check(n, fields)[-1]
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
    # The database decides the other two (no known sale; more than is left of the sale).
    in_database = ("unknown_original_transaction", "refunds_exceed_original")
    assert exp.rejected["refunds_exceed_original"] > 0
    seeded = {k: v for k, v in exp.rejected.items() if k not in in_database}
    assert reasons == seeded


def test_copy_lines_escape_what_copy_text_format_needs() -> None:
    from datetime import UTC, datetime

    from pipelines.settlement.store import copy_line

    ts = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    ok = (3, "T-1", "TX\\1", ts, "refund", 1250, "eur", "4242", None, "S1", None)
    assert copy_line(ok) == "3\tT-1\tTX\\\\1\t2026-11-26T09:00:00+00:00\trefund\t1250\teur\t4242\t\\N\tS1\t\\N\n"
    bad = (4, "T\t1", "a\nb\\N", None, None, None, None, None, None, None, "malformed_row")
    assert copy_line(bad) == "4\tT\\t1\ta\\nb\\\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\tmalformed_row\n"
