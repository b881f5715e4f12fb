"""The ledger repository: booking inside the caller's transaction, idempotency per effect, verify, balances."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from engine.db.ledger import EffectConflict, balances, find, postings_of, record, record_many, verify
from engine.domain.ledger import LedgerTransaction, Posting, payment_captured, settlement_batch
from tests.integration.ledger.conftest import corruption, simple_txn

pytestmark = pytest.mark.integration


def transactions_for(engine: sa.Engine, effect_prefix: str) -> list[tuple[str, str, int]]:
    """(id, effect_key, entry count) of the transactions whose effect key starts with ``effect_prefix``."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.id, t.effect_key, count(e.id) FROM ledger_transactions t "
                "LEFT JOIN ledger_entries e ON e.transaction_id = t.id "
                "WHERE starts_with(t.effect_key, :p) GROUP BY t.id, t.effect_key ORDER BY t.effect_key"
            ),
            {"p": effect_prefix},
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def test_record_books_the_transaction_and_its_entries(engine: sa.Engine, tag: str) -> None:
    txn = simple_txn(tag, amount=1234)
    with engine.begin() as conn:
        txn_id = record(conn, txn)
    assert txn_id.startswith("ltx_")
    assert transactions_for(engine, tag) == [(txn_id, f"{tag}:e1", 2)]
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT kind, job_id, description, metadata FROM ledger_transactions WHERE id = :i"), {"i": txn_id}
        ).one()
        assert tuple(row) == ("adjustment", f"job_{tag}", "test", {"tag": tag})
        assert sorted(postings_of(conn, [txn_id])[txn_id], key=lambda p: p.amount) == [
            Posting(f"{tag}:income", "eur", -1234),
            Posting(f"{tag}:cash", "eur", 1234),
        ]
        assert find(conn, f"{tag}:e1") == txn_id
        assert find(conn, f"{tag}:nope") is None


def test_record_writes_inside_the_callers_transaction(engine: sa.Engine, tag: str) -> None:
    with engine.connect() as conn:
        conn.begin()
        record(conn, simple_txn(tag))
        conn.execute(sa.text("SELECT 1"))  # the caller's other writes (checkpoint, outbox) would go here
        conn.rollback()
    # Rolled back with the caller: record() did not commit on its own.
    assert transactions_for(engine, tag) == []


def test_second_record_of_the_same_effect_writes_nothing(engine: sa.Engine, tag: str) -> None:
    txn = payment_captured(f"job_{tag}", "cus_1", "eur", 10_000, 2_300, "IE", fee=50)
    with engine.begin() as conn:
        first = record(conn, txn)
    with engine.begin() as conn:
        again = record(conn, txn)
    # A replay built anew from the same inputs is the same effect too.
    with engine.begin() as conn:
        rebuilt = record(conn, payment_captured(f"job_{tag}", "cus_1", "EUR", 10_000, 2_300, "ie", fee=50))
    assert first == again == rebuilt
    assert transactions_for(engine, f"payment:job_{tag}:") == [(first, f"payment:job_{tag}:capture", 5)]


def test_same_effect_with_other_postings_is_a_conflict(engine: sa.Engine, tag: str) -> None:
    with engine.begin() as conn:
        record(conn, simple_txn(tag, amount=100))
    with pytest.raises(EffectConflict, match="already booked"), engine.begin() as conn:
        record(conn, simple_txn(tag, amount=101))
    assert [n for _, _, n in transactions_for(engine, tag)] == [2]


def test_unbalanced_write_through_record_is_refused_at_commit(engine: sa.Engine, tag: str) -> None:
    # A LedgerTransaction cannot be unbalanced; forge one past its validation to show the database still says no.
    txn = simple_txn(tag)
    object.__setattr__(txn, "postings", (Posting(f"{tag}:cash", "eur", 5), Posting(f"{tag}:income", "eur", -4)))
    with pytest.raises(sa.exc.IntegrityError, match="unbalanced"), engine.begin() as conn:
        record(conn, txn)
    assert transactions_for(engine, tag) == []


def test_record_many_books_batches_in_order_and_once(engine: sa.Engine, tag: str) -> None:
    batch = [t for i in range(1, 41) if (t := settlement_batch(tag, f"T{i}", "eur", 1000 * i, 10 * i, i, 150))]
    with engine.begin() as conn:
        existing = record(conn, batch[5])
    with engine.begin() as conn:
        # batch[0] listed twice: booked once; batch[5] booked before: its id comes back.
        ids = record_many(conn, [*batch, batch[0]])
    assert len(ids) == 41
    assert ids[5] == existing
    assert ids[-1] == ids[0]
    assert len(set(ids)) == 40
    booked = transactions_for(engine, f"settlement:{tag}:")
    assert len(booked) == 40
    by_key = {key: (tid, n) for tid, key, n in booked}
    for txn, txn_id in zip(batch, ids, strict=False):
        assert by_key[txn.effect_key] == (txn_id, len(txn.postings))


def test_record_many_spans_several_insert_chunks(engine: sa.Engine, tag: str) -> None:
    txns = [simple_txn(tag, key=f"bulk{i:05d}", amount=i + 1) for i in range(2500)]
    with engine.begin() as conn:
        ids = record_many(conn, txns)
    assert len(set(ids)) == 2500
    booked = transactions_for(engine, f"{tag}:bulk")
    assert len(booked) == 2500
    assert {n for _, _, n in booked} == {2}
    with engine.connect() as conn:
        assert record_many(conn, []) == []


def test_record_many_refuses_one_effect_listed_two_ways(engine: sa.Engine, tag: str) -> None:
    with pytest.raises(EffectConflict, match="listed twice"), engine.begin() as conn:
        record_many(conn, [simple_txn(tag, amount=1), simple_txn(tag, amount=2)])
    assert transactions_for(engine, tag) == []


def test_concurrent_writer_of_the_same_effect_waits_and_gets_the_first_id(engine: sa.Engine, tag: str) -> None:
    txn = simple_txn(tag)
    first_booked = threading.Event()
    out: dict[str, object] = {}

    def first() -> None:
        with engine.begin() as conn:
            out["a"] = record(conn, txn)
            first_booked.set()
            time.sleep(0.5)  # hold the row uncommitted: the second writer has to wait on it

    def second() -> None:
        assert first_booked.wait(10)
        started = time.monotonic()
        with engine.begin() as conn:
            out["b"] = record(conn, txn)
        out["waited"] = time.monotonic() - started

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert out["a"] == out["b"]
    assert isinstance(out["waited"], float) and out["waited"] >= 0.3
    assert [n for _, _, n in transactions_for(engine, tag)] == [2]


def test_when_the_first_writer_rolls_back_the_second_books(engine: sa.Engine, tag: str) -> None:
    txn = simple_txn(tag)
    first_booked = threading.Event()
    out: dict[str, str] = {}

    def first() -> None:
        with engine.connect() as conn:
            conn.begin()
            out["a"] = record(conn, txn)
            first_booked.set()
            time.sleep(0.3)
            conn.rollback()

    def second() -> None:
        assert first_booked.wait(10)
        with engine.begin() as conn:
            out["b"] = record(conn, txn)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert out["a"] != out["b"]
    assert transactions_for(engine, tag) == [(out["b"], f"{tag}:e1", 2)]


def test_many_threads_racing_on_one_effect_book_it_once(engine: sa.Engine, tag: str) -> None:
    txn = payment_captured(f"job_{tag}", "cus_race", "jpy", 5000, 500, "IE")
    n = 8
    start = threading.Barrier(n)
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait(10)
            with engine.begin() as conn:
                ids.append(record(conn, txn))
        except BaseException as exc:  # collected: an assertion in a thread would not fail the test
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(ids) == n and len(set(ids)) == 1
    assert [c for _, _, c in transactions_for(engine, f"payment:job_{tag}:")] == [3]


def test_balances_sum_entries_per_account_and_currency(engine: sa.Engine, tag: str) -> None:
    def txn(key: str, *postings: tuple[str, str, int]) -> LedgerTransaction:
        return LedgerTransaction(
            effect_key=f"{tag}:{key}",
            kind="adjustment",
            postings=tuple(Posting(f"{tag}:{a}", c, n) for a, c, n in postings),
        )

    with engine.begin() as conn:
        record_many(
            conn,
            [
                txn("1", ("cash", "eur", 100), ("income", "eur", -100)),
                txn("2", ("cash", "eur", 50), ("income", "eur", -30), ("vat_x", "eur", -20)),
                txn("3", ("cash", "jpy", 700), ("income", "jpy", -700)),
                txn("4", ("income", "eur", 10), ("cash", "eur", -10)),
                txn("5", ("vat_x", "eur", 20), ("cash", "eur", -20)),
            ],
        )
    assert balances(engine, f"{tag}:") == [
        {"account": f"{tag}:cash", "currency": "eur", "balance": 120},
        {"account": f"{tag}:cash", "currency": "jpy", "balance": 700},
        {"account": f"{tag}:income", "currency": "eur", "balance": -120},
        {"account": f"{tag}:income", "currency": "jpy", "balance": -700},
        {"account": f"{tag}:vat_x", "currency": "eur", "balance": 0},
    ]
    # The prefix is literal: "_" is not a LIKE wildcard, so "vat_" does not match "vatx".
    assert [b["account"] for b in balances(engine, f"{tag}:vat_")] == [f"{tag}:vat_x"]
    assert balances(engine, f"{tag}:va%") == []
    everything = balances(engine)
    assert {"account": f"{tag}:cash", "currency": "jpy", "balance": 700} in everything
    # Debits equal credits across the whole ledger, per currency.
    per_currency: dict[str, int] = {}
    for b in everything:
        per_currency[b["currency"]] = per_currency.get(b["currency"], 0) + b["balance"]
    assert set(per_currency.values()) == {0}


def test_verify_passes_on_a_balanced_ledger(engine: sa.Engine, tag: str) -> None:
    with engine.begin() as conn:
        record(conn, simple_txn(tag))
    report = verify(engine)
    assert report.ok, report.to_dict()
    assert report.transactions >= 1 and report.entries >= 2
    assert report.to_dict()["offenders"] == []


def test_verify_lists_every_kind_of_corruption(engine: sa.Engine, tag: str) -> None:
    with corruption(engine, tag) as ids:
        report = verify(engine)
        assert not report.ok
        found = {(o.problem, o.transaction_id) for o in report.offenders}
        assert found == {
            ("unbalanced", ids["unbalanced"]),
            ("too_few_entries", ids["lonely"]),
            ("unbalanced", ids["lonely"]),
            ("orphan_entries", ids["orphan"]),
        }
        unbalanced = next(o for o in report.offenders if o.transaction_id == ids["unbalanced"])
        assert (unbalanced.currency, unbalanced.total, unbalanced.effect_key) == ("eur", 1, f"{tag}:unbalanced")
        assert report.guards_inactive == []
    assert verify(engine).ok  # the corruption is gone again


def test_verify_reports_a_guard_left_disabled(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.begin()
        conn.execute(sa.text("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_balanced"))
        conn.commit()
        try:
            report = verify(engine)
        finally:
            conn.execute(sa.text("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_balanced"))
            conn.commit()
    assert not report.ok
    assert report.guards_inactive == ["ledger_entries.ledger_entries_balanced: disabled"]
    assert verify(engine).ok
