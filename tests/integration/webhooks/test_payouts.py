"""Payouts end to end: the sandbox pays the balance out (``POST /_sim/payouts``), ``payout.paid`` /
``payout.failed`` go through the signed webhook route and the webhook pipeline, the ledger moves clearing → bank,
and ``payments reconcile payouts`` finds every payout equal to its balance transactions and ``stripe_clearing`` back
at zero once everything is paid out.

The sandbox and the database are shared by the tests of a worker, so these tests pay in NZD, a currency no other
test uses, and reconcile that currency only.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from click.testing import CliRunner

from engine.db.ledger import verify
from engine.ops.payout_reconcile import reconcile_payouts
from engine.runtime.container import Container
from pipelines.webhook import payout as payout_handler
from pipelines.webhook.context import HandlerContext
from tests.integration.refunds.helpers import load, payment_envelope, refund_envelope, sim_events
from tests.integration.webhooks import test_stripe_webhooks as base

container = base.container
api = base.api

CUR = "nzd"


def _pay(c: Container, amount: int) -> Any:
    job = c.run_job("payment", payment_envelope("IE", amount, currency=CUR, payment_method="pm_card_fr"))
    assert job.status == "succeeded", job.error
    return load(c, job.id)


def _payout(stripe_sim: Any, c: Container, api: Any, *, fail: bool = False) -> dict[str, Any]:
    made = httpx.post(f"{stripe_sim.base_url}/_sim/payouts", json={"currency": CUR, "fail": fail}).json()["data"]
    assert len(made) == 1, made
    payout = made[0]
    kind = "payout.failed" if fail else "payout.paid"
    [event] = [e for e in sim_events(stripe_sim, kind) if e["data"]["object"]["id"] == payout["id"]]
    assert base._deliver(api, event).status_code == 200
    base._process_webhooks(c)
    return payout


def _bank(c: Container) -> int:
    import sqlalchemy as sa

    with c.db.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE account = :a"), {"a": f"bank:{CUR}"}
            ).scalar_one()
        )


def test_payouts_move_clearing_to_the_bank_and_reconcile(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    bank_before = _bank(container)
    a = _pay(container, 10_000)
    _pay(container, 2_500)
    refund = container.run_job("refund", refund_envelope(a, 3_000))
    assert refund.status == "succeeded", refund.error
    # Before any payout: Stripe holds exactly what the ledger's clearing says.
    before = reconcile_payouts(container.db, container.stripe, CUR)
    assert before.ok, before.findings
    assert before.clearing[CUR]["ledger"] == before.clearing[CUR]["stripe_unpaid"] > 0

    payout = _payout(stripe_sim, container, api)
    report = reconcile_payouts(container.db, container.stripe, CUR)
    assert report.ok, report.findings
    mine = [p for p in report.payouts if p["id"] == payout["id"]]
    assert mine == [
        {"id": payout["id"], "status": "paid", "currency": CUR, "amount": payout["amount"], "sum": payout["amount"]}
    ]
    # A paid-out period: clearing is back at zero, the bank received the payout.
    assert report.clearing[CUR] == {"ledger": 0, "stripe_unpaid": 0}
    assert _bank(container) - bank_before == payout["amount"]
    assert verify(container.db).ok


def test_a_failed_payout_books_nothing_and_the_next_one_pays_it_out(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    bank_before = _bank(container)
    _pay(container, 4_000)
    failed = _payout(stripe_sim, container, api, fail=True)
    assert failed["status"] == "failed"
    assert _bank(container) == bank_before
    mid = reconcile_payouts(container.db, container.stripe, CUR)
    assert mid.ok, mid.findings
    assert mid.clearing[CUR]["ledger"] > 0  # still at Stripe
    paid = _payout(stripe_sim, container, api)
    assert paid["amount"] == failed["amount"]
    done = reconcile_payouts(container.db, container.stripe, CUR)
    assert done.ok and done.clearing[CUR] == {"ledger": 0, "stripe_unpaid": 0}
    assert verify(container.db).ok


def test_an_unbooked_payout_is_found_and_two_copies_racing_book_it_once(container, api, stripe_sim) -> None:  # type: ignore[no-untyped-def]
    _pay(container, 1_500)
    made = httpx.post(f"{stripe_sim.base_url}/_sim/payouts", json={"currency": CUR}).json()["data"][0]
    found = reconcile_payouts(container.db, container.stripe, CUR)
    kinds = sorted(f.kind for f in found.findings)
    assert kinds == ["clearing_differs", "payout_not_booked"]
    # Two copies of the payout.paid event handled at once (a redelivery racing the first): booked once.
    [event] = [e for e in sim_events(stripe_sim, "payout.paid") if e["data"]["object"]["id"] == made["id"]]
    results: list[dict[str, Any]] = []

    def run() -> None:
        ctx = HandlerContext(container.db, None, container.stripe, "job_test_payout")
        results.append(payout_handler.handle(ctx, event))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [r["outcome"] for r in results] == ["booked", "booked"]
    assert results[0]["ledger_transaction"] == results[1]["ledger_transaction"]
    clean = reconcile_payouts(container.db, container.stripe, CUR)
    assert clean.ok, clean.findings
    assert verify(container.db).ok


def test_cli_reconcile_payouts_json(container, api, stripe_sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    import engine.runtime.container as container_module
    from cli.main import cli

    monkeypatch.setattr(container_module, "bootstrap", lambda *a, **k: container)
    _pay(container, 900)
    runner = CliRunner()
    pending = runner.invoke(cli, ["reconcile", "payouts", "--currency", CUR.upper(), "--json"])
    assert pending.exit_code == 0, pending.output
    _payout(stripe_sim, container, api)
    result = runner.invoke(cli, ["reconcile", "payouts", "--currency", CUR, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["ok"] is True and body["clearing"][CUR] == {"ledger": 0, "stripe_unpaid": 0}
    assert all(p["amount"] == p["sum"] for p in body["payouts"] if p["status"] == "paid")
    # Money booked without Stripe: the clearing check finds it.
    from engine.db.ledger import record
    from engine.domain.ledger import payment_captured

    with container.db.begin() as conn:
        record(conn, payment_captured(f"job_ghost_{CUR}", "cus_x", CUR, 500, 0, "IE"))
    found = runner.invoke(cli, ["reconcile", "payouts", "--currency", CUR])
    assert found.exit_code == 1 and "clearing_differs" in found.output
