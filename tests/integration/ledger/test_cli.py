"""``payments ledger verify|balances`` through click, against the test database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.ledger_cmd import ledger
from config.settings import get_settings
from engine.db.ledger import record_many
from engine.domain.ledger import payment_captured, refund_issued, settlement_batch
from tests.integration.ledger.conftest import corruption

pytestmark = pytest.mark.integration


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[None]:
    """Settings naming the test database, and a data directory where nothing is running."""
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", database_url)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(ledger, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("configured")
def test_balances_json_is_an_array_of_account_currency_balance(engine: sa.Engine, tag: str) -> None:
    customer = f"cus_{tag}"
    with engine.begin() as conn:
        record_many(
            conn,
            [
                payment_captured(f"job_{tag}_1", customer, "EUR", 10_000, 2_300, "IE"),
                payment_captured(f"job_{tag}_2", customer, "jpy", 5_000, 0, "US"),
                refund_issued(f"job_{tag}_3", customer, "eur", 1_000, 230, "IE", payment_job_id=f"job_{tag}_1"),
            ],
        )
        record_many(conn, [t for t in [settlement_batch(tag, f"{tag}_T1", "eur", 5_000, 0, 0, 100)] if t])

    code, out, _ = run("balances", "--account", f"pos_clearing:{tag}", "--json")
    assert code == 0
    assert json.loads(out) == [{"account": f"pos_clearing:{tag}_T1", "currency": "eur", "balance": 4_950}]

    code, out, _ = run("balances", "--json")
    assert code == 0
    rows = json.loads(out)
    assert isinstance(rows, list) and rows
    assert all(set(r) == {"account", "currency", "balance"} for r in rows)
    assert all(isinstance(r["balance"], int) for r in rows)
    assert {"account": "vat_payable:US", "currency": "jpy", "balance": 0} not in rows  # no zero-VAT line booked


@pytest.mark.usefixtures("configured")
def test_balances_text_is_a_table(engine: sa.Engine, tag: str) -> None:
    with engine.begin() as conn:
        record_many(conn, [t for t in [settlement_batch(tag, f"{tag}_T9", "usd", 1_234, 0, 0, 0)] if t])
    code, out, _ = run("balances", "--account", f"pos_clearing:{tag}_T9")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ACCOUNT", "BALANCE"]
    assert lines[1].split() == [f"pos_clearing:{tag}_T9", "12.34", "USD"]  # formatted; --json keeps minor units

    code, out, _ = run("balances", "--account", f"{tag}-none", "--json")
    assert (code, json.loads(out)) == (0, [])


@pytest.mark.usefixtures("configured")
def test_verify_exits_0_on_a_balanced_ledger(engine: sa.Engine, tag: str) -> None:
    with engine.begin() as conn:
        record_many(conn, [payment_captured(f"job_{tag}", "cus_v", "kwd", 1_000, 150, "KW")])
    code, out, _ = run("verify")
    assert code == 0
    assert out.startswith("ledger balanced:")

    code, out, _ = run("verify", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["offenders"] == [] and report["guards_inactive"] == []
    assert report["transactions"] >= 1 and report["entries"] >= 2


@pytest.mark.usefixtures("configured")
def test_verify_exits_1_and_lists_offenders(engine: sa.Engine, tag: str) -> None:
    with corruption(engine, tag) as ids:
        code, out, err = run("verify")
        assert code == 1
        assert "ledger does not balance" in err
        for txn_id in ids.values():
            assert txn_id in out
        assert "entries in eur sum to 1, not 0" in out

        code, out, _ = run("verify", "--json")
        assert code == 1
        report = json.loads(out)
        assert report["ok"] is False
        assert {o["transaction_id"] for o in report["offenders"]} == set(ids.values())
        assert all(
            set(o) == {"problem", "transaction_id", "effect_key", "message", "currency", "total", "entries"}
            for o in report["offenders"]
        )
    assert run("verify")[0] == 0


def test_without_a_database_the_commands_exit_1_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PAYMENTS_DATABASE_URL", raising=False)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)  # no .env file in sight
    get_settings.cache_clear()
    try:
        for args in (["verify"], ["balances", "--json"]):
            code, out, err = run(*args)
            assert code == 1
            assert "nothing is running" in err and "PAYMENTS_DATABASE_URL" in err
            assert out == ""
    finally:
        get_settings.cache_clear()


def test_an_unreachable_database_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sandbox.ports import port_open

    # A port nothing listens on: connecting fails at once.
    port = 1
    assert not port_open("127.0.0.1", port)
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{port}/none")
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    try:
        code, _, err = run("verify")
        assert code == 1
        assert "cannot read the ledger: OperationalError" in err
    finally:
        get_settings.cache_clear()
