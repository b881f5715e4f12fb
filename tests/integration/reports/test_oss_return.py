"""The OSS return computed from real ledger rows on PostgreSQL, checked against figures worked out by hand.

The seller is in Ireland.  Q2 2024 ends on Sunday 30 June, so non-euro sales convert at the ECB's publication
of Monday 1 July 2024 (SEK 11.3675, PLN 4.3008, HUF 394.25, CZK 25.048 — tests/data/ecb).  Hand figures (the
same as docs/reports.md):

* SE 25 %: 1,000.00 + 333.33 − 100.00 (refunded in Q2) = 1,233.33 SEK → 108.496… → 108.50 EUR;
  VAT 250.00 + 83.33 − 25.00 = 308.33 SEK → 27.123… → 27.12 EUR
* PL 23 %: 500.00 PLN → 116.257… → 116.26 EUR; VAT 115.00 PLN → 26.739… → 26.74 EUR
* HU 27 %: 39,425.00 HUF → 100.00 EUR; VAT 10,644.75 HUF → 27.00 EUR
* CZ 21 %: 1,252.40 CZK → 50.00 EUR; VAT 263.00 CZK → 10.4998… → 10.50 EUR
* the refund in Q3 of 400.00 SEK + 100.00 SEK VAT of a Q2 sale: a correction of 2024-Q2, SE, at Q2's rate:
  −35.188… → −35.19 EUR taxable, −8.797… → −8.80 EUR VAT
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from engine.domain.conversion import RateMissing
from engine.domain.ledger import payment_captured, refund_issued, settlement_batch
from engine.reports.oss import compute_oss_return
from engine.reports.periods import quarter
from pipelines.webhook.dispute import dispute_opened
from tests.integration.reports.conftest import book_at, import_real_rates

pytestmark = pytest.mark.integration

SELLER = "IE"
Q2, Q3 = quarter(2024, 2), quarter(2024, 3)
AFTER_Q3 = date(2024, 10, 15)


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def sale(job: str, cur: str, net: int, vat: int, country: str, rate: str, scheme: str, fee: int = 0):  # type: ignore[no-untyped-def]
    return payment_captured(job, f"cus_{job}", cur, net, vat, country, fee=fee, vat_rate=rate, vat_scheme=scheme)


def book_scenario(db: sa.Engine) -> None:
    """Q2 and Q3 2024 of a seller in Ireland: consumers in six states, B2B, domestic, POS, refunds, a dispute."""
    import_real_rates(db)
    with db.begin() as conn:
        # OSS sales to consumers, booked in Q2 (the first one on the quarter's first instant).
        book_at(conn, sale("p_de", "eur", 10_000, 1_900, "DE", "19", "oss", fee=320), datetime(2024, 4, 1, tzinfo=UTC))
        book_at(conn, sale("p_se1", "sek", 100_000, 25_000, "SE", "25", "oss"), at(4, 15))
        book_at(conn, sale("p_pl", "pln", 50_000, 11_500, "PL", "23", "oss"), at(5, 2))
        book_at(conn, sale("p_hu", "huf", 3_942_500, 1_064_475, "HU", "27", "oss"), at(5, 20))
        book_at(conn, sale("p_cz", "czk", 125_240, 26_300, "CZ", "21", "oss"), at(6, 3))
        book_at(conn, sale("p_se2", "sek", 33_333, 8_333, "SE", "25", "oss"), at(6, 10))
        book_at(conn, sale("p_fr1", "eur", 5_000, 1_000, "FR", "20", "oss"), at(6, 11))
        book_at(conn, sale("p_fr2", "eur", 10_000, 550, "FR", "5.5", "oss"), at(6, 12))
        # Booked before sales carried their VAT terms: inferred (AT at 20 %, NL reverse charge).
        book_at(conn, payment_captured("p_at_old", "cus_at", "eur", 4_000, 800, "AT"), at(4, 20))
        book_at(conn, payment_captured("p_nl_old", "cus_nl", "eur", 30_000, 0, "NL"), at(4, 21))
        # Not OSS: B2B reverse charge, a domestic consumer, a customer outside the EU, a POS batch.
        book_at(conn, sale("p_b2b_de", "eur", 200_000, 0, "DE", "0", "reverse_charge"), at(5, 5))
        book_at(conn, sale("p_b2b_se", "sek", 500_000, 0, "SE", "0", "reverse_charge"), at(5, 6))
        book_at(conn, sale("p_ie", "eur", 10_000, 2_300, "IE", "23", "domestic"), at(5, 7))
        book_at(conn, sale("p_us", "usd", 10_000, 0, "US", "0", "outside_scope"), at(5, 8))
        pos = settlement_batch("batch1", "T1", "eur", 20_000, 500, 1_000, 100)
        assert pos is not None
        book_at(conn, pos, at(6, 20))
        # A refund in the same quarter reduces the quarter's line; a dispute is not a refund.
        book_at(conn, refund_issued("r_se2", "cus_p_se2", "sek", 10_000, 2_500, "SE", "p_se2", "25", "oss"), at(6, 29))
        book_at(conn, dispute_opened("dp_1", "cus_p_fr1", "eur", 6_000, "p_fr1"), at(6, 30))
        # Q3: a refund of a Q2 sale (a correction of Q2) and a new sale.
        book_at(conn, refund_issued("r_se1", "cus_p_se1", "sek", 40_000, 10_000, "SE", "p_se1", "25", "oss"), at(7, 15))
        book_at(conn, sale("p_de_q3", "eur", 1_000, 190, "DE", "19", "oss"), at(8, 1))
        # The last instant of Q3 is still Q3.
        book_at(
            conn,
            sale("p_ie_q3", "eur", 100, 23, "IE", "23", "domestic"),
            datetime(2024, 9, 30, 23, 59, 59, 999999, tzinfo=UTC),
        )


def lines(doc: dict, section: str) -> dict[tuple, tuple[int, int]]:  # type: ignore[type-arg]
    return {
        (line.get("period"), line["country"], line["vat_rate"]): (line["taxable_eur"], line["vat_eur"])
        for line in doc[section]
    }


def test_q2_return_per_state_and_rate_to_the_cent(db: sa.Engine) -> None:
    book_scenario(db)
    with db.connect() as conn:
        oss = compute_oss_return(conn, Q2, seller_country=SELLER, today=AFTER_Q3)
    doc = oss.to_json()
    assert doc["preliminary"] is False
    assert lines(doc, "supplies") == {
        ("2024-Q2", "AT", "20"): (4_000, 800),
        ("2024-Q2", "CZ", "21"): (5_000, 1_050),
        ("2024-Q2", "DE", "19"): (10_000, 1_900),
        ("2024-Q2", "FR", "20"): (5_000, 1_000),
        ("2024-Q2", "FR", "5.5"): (10_000, 550),
        ("2024-Q2", "HU", "27"): (10_000, 2_700),
        ("2024-Q2", "PL", "23"): (11_626, 2_674),
        ("2024-Q2", "SE", "25"): (10_850, 2_712),
    }
    assert doc["corrections"] == []
    assert doc["total_vat_eur"] == 800 + 1_050 + 1_900 + 1_000 + 550 + 2_700 + 2_674 + 2_712
    assert {c["country"]: c["total_vat_eur"] for c in doc["by_country"]}["FR"] == 1_550
    se = next(s for s in doc["supplies"] if s["country"] == "SE")
    assert se["currencies"] == [
        {"currency": "sek", "taxable": 123_333, "vat": 30_833, "exchange_rate": "11.3675",
         "exchange_rate_date": "2024-07-01", "taxable_eur": 10_850, "vat_eur": 2_712}
    ]  # fmt: skip
    assert {(r["currency"], r["rate"], r["date"]) for r in doc["exchange_rates"]} == {
        ("sek", "11.3675", "2024-07-01"),
        ("pln", "4.3008", "2024-07-01"),
        ("huf", "394.25", "2024-07-01"),
        ("czk", "25.048", "2024-07-01"),
    }
    at_line = next(s for s in doc["supplies"] if s["country"] == "AT")
    assert at_line["vat_rate"] == "20"


def test_q2_excluded_parts_and_oss_add_up_to_the_ledgers_revenue(db: sa.Engine) -> None:
    book_scenario(db)
    with db.connect() as conn:
        doc = compute_oss_return(conn, Q2, seller_country=SELLER, today=AFTER_Q3).to_json()
    assert doc["excluded"] == {
        "domestic": {"eur": {"taxable": 10_000 + 19_000, "vat": 2_300}},
        "reverse_charge": {"eur": {"taxable": 230_000, "vat": 0}, "sek": {"taxable": 500_000, "vat": 0}},
        "outside_scope": {"usd": {"taxable": 10_000, "vat": 0}},
        "other": {},
    }
    eur = doc["reconciliation"]["eur"]
    assert eur["sales"] == {
        "oss": 10_000 + 5_000 + 10_000 + 4_000,
        "domestic": 29_000,
        "reverse_charge": 230_000,
        "outside_scope": 0,
        "other": 0,
        "total": 288_000,
        "ledger_revenue": 288_000,
        "agrees": True,
    }
    assert eur["refunds"] == {
        "oss_same_period": 0, "oss_corrections": 0, "other": 500, "total": 500, "ledger_refunds": 500, "agrees": True
    }  # fmt: skip
    sek = doc["reconciliation"]["sek"]
    assert sek["sales"]["oss"] + sek["sales"]["reverse_charge"] == sek["sales"]["ledger_revenue"] == 633_333
    assert sek["refunds"]["oss_same_period"] == 10_000
    assert sek["vat"] == {
        "charged": 33_333,
        "refunded": 2_500,
        "net": 30_833,
        "ledger_vat_payable": 30_833,
        "agrees": True,
    }
    assert doc["agrees_with_ledger"] is True
    assert doc["transactions"] == 17


def test_q3_lists_the_refund_of_a_q2_sale_as_a_correction_of_q2(db: sa.Engine) -> None:
    book_scenario(db)
    with db.connect() as conn:
        doc = compute_oss_return(conn, Q3, seller_country=SELLER, today=AFTER_Q3).to_json()
    assert lines(doc, "supplies") == {("2024-Q3", "DE", "19"): (1_000, 190)}
    assert lines(doc, "corrections") == {("2024-Q2", "SE", "25"): (-3_519, -880)}
    correction = doc["corrections"][0]["currencies"][0]
    assert (correction["exchange_rate"], correction["exchange_rate_date"]) == ("11.3675", "2024-07-01")
    assert doc["by_country"] == [
        {"country": "DE", "vat_eur": 190, "corrections_vat_eur": 0, "total_vat_eur": 190},
        {"country": "SE", "vat_eur": 0, "corrections_vat_eur": -880, "total_vat_eur": -880},
    ]
    assert doc["total_vat_eur"] == 190 - 880
    assert doc["reconciliation"]["sek"]["refunds"]["oss_corrections"] == 40_000
    assert doc["reconciliation"]["eur"]["sales"]["domestic"] == 100  # the last instant of Q3 is in Q3
    assert doc["agrees_with_ledger"] is True


def test_the_quarter_in_progress_is_preliminary_at_the_latest_rate(db: sa.Engine) -> None:
    import_real_rates(db)
    with db.begin() as conn:
        book_at(conn, sale("p_pl_q3", "pln", 20_000, 4_600, "PL", "23", "oss"), at(8, 1))
    with db.connect() as conn:
        doc = compute_oss_return(conn, Q3, seller_country=SELLER, today=date(2024, 8, 15)).to_json()
    assert doc["preliminary"] is True
    # The latest publication on or before 15 August in the table is 2 July: PLN 4.325.
    assert lines(doc, "supplies") == {("2024-Q3", "PL", "23"): (4_624, 1_064)}
    assert doc["exchange_rates"][0]["date"] == "2024-07-02"
    assert doc["exchange_rates"][0]["basis"].startswith("preliminary")


def test_a_closed_quarter_without_its_rate_fails_naming_currency_and_date(db: sa.Engine) -> None:
    import_real_rates(db)
    with db.begin() as conn:
        book_at(conn, sale("p_pl_q3", "pln", 20_000, 4_600, "PL", "23", "oss"), at(8, 1))
    # 30 September 2024 is a Monday, a publication day whose rates are not imported: never a guess.
    with db.connect() as conn, pytest.raises(RateMissing) as caught:
        compute_oss_return(conn, Q3, seller_country=SELLER, today=AFTER_Q3)
    assert (caught.value.code, caught.value.currency, caught.value.day) == ("rate_missing", "pln", date(2024, 9, 30))


def test_an_old_sale_whose_rate_cannot_be_told_is_listed_as_unknown(db: sa.Engine) -> None:
    import_real_rates(db)
    with db.begin() as conn:
        # 7 EUR VAT on 100 EUR fits no Austrian rate of 2024 (20, 13, 10): not guessed.
        book_at(conn, payment_captured("p_at_odd", "cus_at", "eur", 10_000, 700, "AT"), at(5, 1))
    with db.connect() as conn:
        doc = compute_oss_return(conn, Q2, seller_country=SELLER, today=AFTER_Q3).to_json()
    assert lines(doc, "supplies") == {("2024-Q2", "AT", None): (10_000, 700)}
    assert any("p_at_odd" in note and "unknown" in note for note in doc["notes"])


def test_an_empty_quarter_is_an_empty_return(db: sa.Engine) -> None:
    with db.connect() as conn:
        doc = compute_oss_return(conn, Q2, seller_country=SELLER, today=AFTER_Q3).to_json()
    assert (doc["supplies"], doc["corrections"], doc["total_vat_eur"], doc["transactions"]) == ([], [], 0, 0)
    assert doc["agrees_with_ledger"] is True


def test_the_worked_example_of_docs_reports_md(db: sa.Engine) -> None:
    import_real_rates(db)
    with db.begin() as conn:
        book_at(conn, sale("p_se1", "sek", 100_000, 25_000, "SE", "25", "oss"), at(4, 15))
        book_at(conn, sale("p_se2", "sek", 33_333, 8_333, "SE", "25", "oss"), at(6, 10))
        book_at(conn, sale("p_pl", "pln", 50_000, 11_500, "PL", "23", "oss"), at(5, 2))
        book_at(conn, sale("p_hu", "huf", 3_942_500, 1_064_475, "HU", "27", "oss"), at(5, 20))
        book_at(conn, sale("p_cz", "czk", 125_240, 26_300, "CZ", "21", "oss"), at(6, 3))
        book_at(conn, sale("p_de", "eur", 10_000, 1_900, "DE", "19", "oss"), at(6, 4))
        book_at(conn, refund_issued("r_se2", "c", "sek", 10_000, 2_500, "SE", "p_se2", "25", "oss"), at(6, 29))
        book_at(conn, sale("p_b2b_de", "eur", 200_000, 0, "DE", "0", "reverse_charge"), at(5, 5))
        book_at(conn, sale("p_b2b_se", "sek", 500_000, 0, "SE", "0", "reverse_charge"), at(5, 6))
        book_at(conn, sale("p_ie", "eur", 10_000, 2_300, "IE", "23", "domestic"), at(5, 7))
        book_at(conn, sale("p_us", "usd", 10_000, 0, "US", "0", "outside_scope"), at(5, 8))
        book_at(conn, refund_issued("r_se1", "c", "sek", 40_000, 10_000, "SE", "p_se1", "25", "oss"), at(7, 15))
    with db.connect() as conn:
        q2 = compute_oss_return(conn, Q2, seller_country=SELLER, today=AFTER_Q3).to_json()
        q3 = compute_oss_return(conn, Q3, seller_country=SELLER, today=AFTER_Q3).to_json()
    assert {c["country"]: (c["vat_eur"]) for c in q2["by_country"]} == {
        "CZ": 1_050, "DE": 1_900, "HU": 2_700, "PL": 2_674, "SE": 2_712
    }  # fmt: skip
    assert q2["total_vat_eur"] == 11_036
    assert lines(q3, "corrections") == {("2024-Q2", "SE", "25"): (-3_519, -880)}
    assert q2["agrees_with_ledger"] and q3["agrees_with_ledger"]
