"""The revenue and settlement reports from real ledger rows, with the ledger's own account sums beside them."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from engine.reports.periods import Period, month, parse_period
from engine.reports.revenue import compute_revenue
from engine.reports.settlement import compute_settlement
from tests.integration.reports.test_oss_return import book_scenario

pytestmark = pytest.mark.integration


def day(text: str) -> Period:
    return parse_period(text, ("day",))


def test_revenue_per_day_in_euro_with_fees_refunds_and_a_dispute(db: sa.Engine) -> None:
    book_scenario(db)
    with db.connect() as conn:
        report = compute_revenue(conn, month(2024, 6), "EUR")
    doc = report.to_json()
    assert doc["days"] == [
        {"date": "2024-06-11", "currency": "eur", "gross": 6_000, "vat": 1_000, "refunds": 0, "refund_vat": 0,
         "fees": 0, "disputes": 0, "net": 5_000, "transactions": 1},
        {"date": "2024-06-12", "currency": "eur", "gross": 10_550, "vat": 550, "refunds": 0, "refund_vat": 0,
         "fees": 0, "disputes": 0, "net": 10_000, "transactions": 1},
        # POS: 200.00 sold, 10.00 voided, 5.00 refunded, 1 % fee on 190.00.
        {"date": "2024-06-20", "currency": "eur", "gross": 19_000, "vat": 0, "refunds": 500, "refund_vat": 0,
         "fees": 190, "disputes": 0, "net": 18_310, "transactions": 1},
        {"date": "2024-06-30", "currency": "eur", "gross": 0, "vat": 0, "refunds": 0, "refund_vat": 0,
         "fees": 0, "disputes": 6_000, "net": -6_000, "transactions": 1},
    ]  # fmt: skip
    assert doc["totals"] == {
        "eur": {"gross": 35_550, "vat": 1_550, "refunds": 500, "refund_vat": 0, "fees": 190, "disputes": 6_000,
                "net": 27_310, "transactions": 4}
    }  # fmt: skip
    assert doc["ledger"] == {
        "eur": {"revenue": 34_000, "vat_payable": 1_550, "refunds": 500, "fees": 190, "stripe_clearing": 10_550,
                "pos_clearing": 18_310}
    }  # fmt: skip
    assert doc["checks"] == {"eur": {"revenue": True, "vat_payable": True, "refunds": True, "fees": True}}
    assert doc["currency"] == "eur" and doc["agrees_with_ledger"] is True


def test_revenue_of_every_currency_in_a_quarter_agrees_with_the_ledger(db: sa.Engine) -> None:
    book_scenario(db)
    with db.connect() as conn:
        report = compute_revenue(conn, parse_period("2024-Q2", ("quarter",)))
    assert set(report.totals) == {"eur", "sek", "pln", "huf", "czk", "usd"}
    sek = report.totals["sek"]
    # Sold 1,333.33 + 5,000.00 (B2B) SEK net and 333.33 VAT; refunded 100.00 + 25.00 VAT in June.
    assert (sek.gross, sek.vat, sek.refunds, sek.refund_vat) == (666_666, 33_333, 12_500, 2_500)
    assert sek.net == 666_666 - 33_333 - 10_000
    assert report.totals["eur"].fees == 320 + 190
    assert report.agrees


def test_settlement_of_a_day_per_clearing_account(db: sa.Engine) -> None:
    book_scenario(db)
    with db.connect() as conn:
        pos_day = compute_settlement(conn, day("2024-06-20"))
        card_day = compute_settlement(conn, day("2024-04-01"))
        refund_day = compute_settlement(conn, day("2024-06-29"))
        dispute_day = compute_settlement(conn, day("2024-06-30"))
    assert pos_day.rows == [
        {"clearing": "pos:T1", "currency": "eur", "sales": 20_000, "refunds": 500, "voids": 1_000, "fees": 190,
         "disputes": 0, "net": 18_310, "ledger": 18_310, "agrees": True}
    ]  # fmt: skip
    assert card_day.rows == [
        {"clearing": "stripe", "currency": "eur", "sales": 11_900, "refunds": 0, "voids": 0, "fees": 320,
         "disputes": 0, "net": 11_580, "ledger": 11_580, "agrees": True}
    ]  # fmt: skip
    assert refund_day.rows[0]["refunds"] == 12_500 and refund_day.rows[0]["net"] == -12_500
    assert dispute_day.rows[0]["disputes"] == 6_000 and dispute_day.agrees
    with db.connect() as conn:
        assert compute_settlement(conn, day("2024-01-02")).rows == []


def test_a_day_boundary_is_utc_midnight(db: sa.Engine) -> None:
    book_scenario(db)
    with db.connect() as conn:
        last = compute_revenue(conn, day("2024-09-30"), "eur")
        next_day = compute_revenue(conn, day("2024-10-01"), "eur")
    assert last.totals["eur"].gross == 123 and next_day.totals == {}
    assert date(2024, 9, 30) == last.rows[0][0]
