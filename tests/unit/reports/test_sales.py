"""What a ledger transaction sold or refunded, with recorded and inferred VAT terms (engine.reports.sales)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.domain.ledger import LedgerTransaction, invoice_issued, payment_captured, refund_issued, settlement_batch
from engine.reports.ledger_reader import BookedTransaction
from engine.reports.sales import infer_scheme, refunds_in, sales_in

WHEN = datetime(2024, 5, 10, 12, tzinfo=UTC)


def booked(txn: LedgerTransaction | None, when: datetime = WHEN) -> BookedTransaction:
    assert txn is not None
    return BookedTransaction("ltx_1", txn.kind, txn.effect_key, txn.job_id, when, dict(txn.metadata), txn.postings)


def test_recorded_terms_are_used_as_they_are() -> None:
    [sale] = sales_in(booked(payment_captured("j", "c", "sek", 100_000, 25_000, "SE", 0, "25", "oss")), "IE")
    assert (sale.currency, sale.net, sale.vat, sale.country, sale.scheme, sale.rate, sale.terms) == (
        "sek", 100_000, 25_000, "SE", "oss", "25", "recorded"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("country", "vat", "scheme"),
    [("DE", 1_900, "oss"), ("IE", 2_300, "domestic"), ("DE", 0, "reverse_charge"), ("US", 0, "outside_scope"),
     ("IE", 0, "domestic"), ("EL", 2_400, "oss"), ("US", 100, "other")],
)  # fmt: skip
def test_schemes_of_old_sales_are_inferred_from_where_the_vat_went(country: str, vat: int, scheme: str) -> None:
    assert infer_scheme(country, vat, "IE") == scheme


@pytest.mark.parametrize(
    ("country", "net", "vat", "rate"),
    [
        ("DE", 10_000, 1_900, "19"),  # exclusive, standard
        ("DE", 10_000, 700, "7"),  # exclusive, reduced
        ("DE", 8_403, 1_597, "19"),  # inclusive 100.00 at 19 %: net 84.03
        ("FR", 10_000, 550, "5.5"),
        ("FR", 10_000, 210, "2.1"),  # super-reduced
        ("AT", 10_000, 700, None),  # no Austrian rate gives 7 %
        ("FI", 10_000, 2_400, "24"),  # before 1 September 2024 Finland's standard rate was 24 %
    ],
)
def test_rates_of_old_oss_sales_are_inferred_only_when_exactly_one_fits(
    country: str, net: int, vat: int, rate: str | None
) -> None:
    [sale] = sales_in(booked(payment_captured("j", "c", "eur", net, vat, country)), "IE")
    assert (sale.scheme, sale.rate, sale.terms) == ("oss", rate, "inferred" if rate else "unknown")


def test_a_sale_too_small_to_tell_its_rate_keeps_it_unknown() -> None:
    # 0.02 EUR at any German rate has 0.00 VAT: every rate fits, so none is chosen.
    [sale] = sales_in(booked(payment_captured("j", "c", "eur", 2, 0, "DE", vat_scheme="oss")), "IE")
    assert (sale.scheme, sale.rate, sale.terms) == ("oss", None, "unknown")


def test_a_pos_settlement_is_domestic_revenue_net_of_voids() -> None:
    [sale] = sales_in(booked(settlement_batch("b", "T1", "eur", 20_000, 500, 1_000, 100)), "IE")
    assert (sale.scheme, sale.net, sale.vat) == ("domestic", 19_000, 0)
    [refund] = refunds_in(booked(settlement_batch("b", "T1", "eur", 20_000, 500, 1_000, 100)))
    assert (refund.net, refund.vat, refund.payment) == (500, 0, None)


def test_a_subscription_invoice_is_a_sale_and_a_refund_names_its_payment() -> None:
    [sale] = sales_in(
        booked(invoice_issued("s:1:invoice", "c", "eur", 1_000, 190, "DE", "s1", "subscription", "19", "oss")), "IE"
    )
    assert (sale.scheme, sale.rate, sale.net) == ("oss", "19", 1_000)
    [refund] = refunds_in(booked(refund_issued("r", "c", "eur", 400, 76, "DE", "p1")))
    assert (refund.net, refund.vat, refund.country, refund.payment) == (400, 76, "DE", "p1")
    assert sales_in(booked(refund_issued("r", "c", "eur", 400, 76, "DE", "p1")), "IE") == []
