"""The standard transactions of the pipelines balance for every amount and currency, and post where documented."""

from __future__ import annotations

import itertools

import pytest

from engine.domain.ledger import (
    FEES,
    REFUNDS,
    REVENUE,
    STRIPE_CLEARING,
    LedgerTransaction,
    UnbalancedTransaction,
    invoice_issued,
    invoice_paid,
    payment_captured,
    refund_issued,
    settlement_batch,
    settlement_fee,
    totals_by_currency,
)

# Zero-, two- and three-decimal currencies, in either case as the API accepts (docs/api.md).
CURRENCIES = ("EUR", "usd", "JPY", "kwd", "Bhd", "huf")
AMOUNTS = (0, 1, 9, 10, 99, 100, 12_345, 999_999, 10**12)


def by_account(t: LedgerTransaction) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in t.postings:
        out[p.account] = out.get(p.account, 0) + p.amount
    return out


def assert_balanced(t: LedgerTransaction) -> None:
    # The constructor already refuses otherwise; this states the property the tests are about.
    assert all(total == 0 for total in totals_by_currency(t.postings).values())
    assert len(t.postings) >= 2
    assert all(p.amount != 0 for p in t.postings)


def test_payment_captured_balances_for_many_amounts_and_currencies() -> None:
    n = 0
    for currency, net, vat, fee in itertools.product(CURRENCIES, AMOUNTS, AMOUNTS, (0, 1, 30, 250)):
        if net + vat == 0:
            continue
        t = payment_captured("job_1", "cus_1", currency, net, vat, "ie", fee=fee)
        assert_balanced(t)
        accounts = by_account(t)
        assert accounts.get(REVENUE, 0) == -net
        assert accounts.get("vat_payable:IE", 0) == -vat
        assert accounts.get(FEES, 0) == fee
        assert accounts[STRIPE_CLEARING] == net + vat - fee
        assert t.currencies == (currency.lower(),)
        n += 1
    assert n > 1000


def test_payment_captured_shape() -> None:
    t = payment_captured("job_9", "cus_7", "EUR", 10_000, 2_300, "IE")
    assert t.effect_key == "payment:job_9:capture"
    assert t.kind == "payment"
    assert t.job_id == "job_9"
    assert sorted((p.account, p.amount) for p in t.postings) == [
        ("revenue", -10_000),
        ("stripe_clearing", 12_300),
        ("vat_payable:IE", -2_300),
    ]
    assert t.metadata["customer"] == "cus_7"


def test_payment_without_vat_has_no_vat_line() -> None:
    t = payment_captured("job_rc", "cus_b2b", "eur", 5_000, 0, "DE")
    assert {p.account for p in t.postings} == {STRIPE_CLEARING, REVENUE}
    assert t.metadata["vat_country"] == "DE"


@pytest.mark.parametrize(
    ("net", "vat", "fee"), [(-1, 0, 0), (0, -1, 5), (10, 0, -1), (0, 0, 0), (1.5, 0, 0), (10, 2, 0.5)]
)
def test_payment_captured_refuses_bad_amounts(net: int, vat: int, fee: int) -> None:
    with pytest.raises(UnbalancedTransaction):
        payment_captured("job_1", "cus_1", "eur", net, vat, "IE", fee=fee)


def test_refund_reverses_the_payment_split() -> None:
    for currency, net, vat in itertools.product(CURRENCIES, AMOUNTS, AMOUNTS):
        if net + vat == 0:
            continue
        paid = payment_captured("job_p", "cus_1", currency, net, vat, "FR")
        refund = refund_issued("job_r", "cus_1", currency, net, vat, "FR", payment_job_id="job_p")
        assert_balanced(refund)
        # A full refund brings VAT payable and Stripe clearing back to zero; revenue is offset by refunds.
        combined: dict[str, int] = {}
        for t in (paid, refund):
            for account, amount in by_account(t).items():
                combined[account] = combined.get(account, 0) + amount
        assert combined.get("vat_payable:FR", 0) == 0
        assert combined.get(STRIPE_CLEARING, 0) == 0
        assert combined.get(REVENUE, 0) + combined.get(REFUNDS, 0) == 0
    t = refund_issued("job_r", "cus_1", "eur", 100, 23, "IE", payment_job_id="job_p")
    assert t.effect_key == "refund:job_r:issue"
    assert t.kind == "refund"
    assert t.metadata["payment"] == "job_p"


def test_refund_refuses_nothing_to_book() -> None:
    with pytest.raises(UnbalancedTransaction):
        refund_issued("job_r", "cus_1", "eur", 0, 0, "IE")


@pytest.mark.parametrize(
    ("base", "bps", "fee"),
    [(0, 150, 0), (10_000, 0, 0), (10_000, 150, 150), (333, 150, 5), (100, 50, 1), (99, 50, 0), (1, 10_000, 1)],
)
def test_settlement_fee_rounds_half_up(base: int, bps: int, fee: int) -> None:
    # 333 * 1.5% = 4.995 -> 5; 100 * 0.5% = 0.5 -> 1 (half up); 99 * 0.5% = 0.495 -> 0.
    assert settlement_fee(base, bps) == fee


@pytest.mark.parametrize("bps", [-1, 10_001])
def test_settlement_fee_bps_range(bps: int) -> None:
    with pytest.raises(UnbalancedTransaction):
        settlement_fee(100, bps)


def test_settlement_batch_balances_and_posts_gross_against_revenue() -> None:
    n = 0
    for currency, sales, refunds, voids, bps in itertools.product(
        CURRENCIES, AMOUNTS[:6], AMOUNTS[:6], AMOUNTS[:5], (0, 1, 150, 10_000)
    ):
        t = settlement_batch("job_s", "T1", currency, sales, refunds, voids, bps)
        if sales == refunds == voids == 0:
            assert t is None
            continue
        assert t is not None
        assert_balanced(t)
        fee = settlement_fee(max(sales - voids, 0), bps)
        accounts = by_account(t)
        assert accounts.get("pos_clearing:T1", 0) == sales - voids - refunds - fee
        assert accounts.get(REVENUE, 0) == -(sales - voids)
        assert accounts.get(REFUNDS, 0) == refunds
        assert accounts.get(FEES, 0) == fee
        # No VAT split on POS settlement (docs/ledger.md).
        assert not any(p.account.startswith("vat_payable") for p in t.postings)
        n += 1
    assert n > 500


def test_settlement_batch_shape() -> None:
    t = settlement_batch("job_s", "T1", "EUR", 10_000, 500, 1_000, 150)
    assert t is not None
    assert t.effect_key == "settlement:job_s:T1:eur"
    assert t.kind == "settlement"
    assert t.metadata["fee"] == 135  # 1.5% of (10000 - 1000)


def test_invoice_then_payment_clears_the_receivable() -> None:
    for currency, net, vat in itertools.product(CURRENCIES, AMOUNTS, AMOUNTS):
        if net + vat == 0:
            continue
        billed = invoice_issued("sub:1:inv", "cus_1", currency, net, vat, "IE")
        paid = invoice_paid("sub:1:pay", "cus_1", currency, net + vat)
        assert_balanced(billed)
        assert_balanced(paid)
        assert by_account(billed)["receivable:cus_1"] + by_account(paid)["receivable:cus_1"] == 0
    with pytest.raises(UnbalancedTransaction):
        invoice_paid("sub:1:pay", "cus_1", "eur", 0)


def test_sales_and_refunds_record_their_vat_terms_when_given() -> None:
    paid = payment_captured("j1", "c1", "eur", 10_000, 2_550, "FI", vat_rate="25.5", vat_scheme="oss")
    assert (paid.metadata["vat_rate"], paid.metadata["vat_scheme"]) == ("25.5", "oss")
    refund = refund_issued("r1", "c1", "eur", 1_000, 255, "FI", "j1", vat_rate="25.5", vat_scheme="oss")
    assert (refund.metadata["vat_rate"], refund.metadata["vat_scheme"]) == ("25.5", "oss")
    invoice = invoice_issued("s:1", "c1", "eur", 1_000, 0, "DE", vat_rate="0", vat_scheme="reverse_charge")
    assert (invoice.metadata["vat_rate"], invoice.metadata["vat_scheme"]) == ("0", "reverse_charge")
    # Older callers pass neither: the metadata is what it was.
    assert "vat_rate" not in payment_captured("j2", "c1", "eur", 100, 23, "IE").metadata


@pytest.mark.parametrize(("rate", "scheme"), [("25,5", None), ("abc", None), ("100", None), (None, "b2b"), (None, "")])
def test_malformed_vat_terms_are_refused(rate: str | None, scheme: str | None) -> None:
    with pytest.raises(ValueError, match="vat_"):
        payment_captured("j", "c", "eur", 100, 23, "IE", vat_rate=rate, vat_scheme=scheme)


def test_a_downgrade_credit_is_a_liability_its_use_pays_the_receivable() -> None:
    from engine.domain.ledger import credit_applied, credit_note_issued

    note = credit_note_issued("subscription:j1:credit_note", "cus_1", "eur", 333, 77, "IE", job_id="j1")
    assert sorted((p.account, p.amount) for p in note.postings) == [
        ("customer_credit:cus_1", -410),
        ("refunds", 333),
        ("vat_payable:IE", 77),
    ]
    used = credit_applied("subscription:j2:credit", "cus_1", "eur", 410, job_id="j2")
    assert sorted((p.account, p.amount) for p in used.postings) == [
        ("customer_credit:cus_1", 410),
        ("receivable:cus_1", -410),
    ]
