"""Validation of postings and ledger transactions: what cannot be booked is refused before any I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.domain.ledger import (
    LEDGER_KINDS,
    LedgerTransaction,
    Posting,
    UnbalancedTransaction,
    credit,
    debit,
    pos_clearing,
    receivable,
    totals_by_currency,
    vat_payable,
)


def txn(*postings: Posting, key: str = "test:1", kind: str = "adjustment") -> LedgerTransaction:
    return LedgerTransaction(effect_key=key, kind=kind, postings=postings)


def test_balanced_transaction_is_accepted_and_keeps_its_postings() -> None:
    t = txn(Posting("a", "EUR", 100), Posting("b", "eur", -60), Posting("c", "eur", -40))
    assert [p.amount for p in t.postings] == [100, -60, -40]
    assert t.currencies == ("eur",)
    assert isinstance(t.postings, tuple)


def test_unbalanced_by_one_minor_unit_is_refused() -> None:
    with pytest.raises(UnbalancedTransaction, match=r"eur \+1"):
        txn(Posting("a", "eur", 101), Posting("b", "eur", -100))


def test_balance_is_per_currency_not_overall() -> None:
    # Sums to zero overall (100 - 100) but not per currency: EUR +100, USD -100.
    with pytest.raises(UnbalancedTransaction, match="usd"):
        txn(Posting("a", "eur", 100), Posting("b", "usd", -100))


def test_balanced_in_two_currencies_is_accepted() -> None:
    t = txn(Posting("a", "eur", 5), Posting("b", "eur", -5), Posting("a", "jpy", 700), Posting("b", "jpy", -700))
    assert t.currencies == ("eur", "jpy")
    assert totals_by_currency(t.postings) == {"eur": 0, "jpy": 0}


@pytest.mark.parametrize("postings", [(), (Posting("a", "eur", 5),)])
def test_fewer_than_two_postings_is_refused(postings: tuple[Posting, ...]) -> None:
    with pytest.raises(UnbalancedTransaction, match="at least 2"):
        txn(*postings)


@pytest.mark.parametrize("amount", [0, 1.0, 2.5, Decimal("3"), True, "5", None, 2**63])
def test_posting_amount_must_be_a_nonzero_int_in_bigint_range(amount: object) -> None:
    with pytest.raises(UnbalancedTransaction):
        Posting("a", "eur", amount)  # type: ignore[arg-type]


def test_largest_bigint_amount_is_accepted() -> None:
    assert Posting("a", "eur", 2**63 - 1).amount == 2**63 - 1
    assert Posting("a", "eur", -(2**63 - 1)).amount == -(2**63 - 1)


@pytest.mark.parametrize("currency", ["", "eu", "euro", "e1r", None, " eur"])
def test_currency_must_be_three_letters(currency: object) -> None:
    with pytest.raises(UnbalancedTransaction, match="currency"):
        Posting("a", currency, 1)  # type: ignore[arg-type]


def test_currency_is_lower_cased() -> None:
    assert Posting("a", "KWD", 1).currency == "kwd"


@pytest.mark.parametrize("account", ["", " revenue", "revenue ", None])
def test_account_must_be_a_clean_name(account: object) -> None:
    with pytest.raises(UnbalancedTransaction, match="account"):
        Posting(account, "eur", 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", "   ", None])
def test_effect_key_is_required(key: object) -> None:
    with pytest.raises(UnbalancedTransaction, match="effect key"):
        LedgerTransaction(effect_key=key, kind="payment", postings=(Posting("a", "eur", 1), Posting("b", "eur", -1)))  # type: ignore[arg-type]


def test_kind_must_be_known() -> None:
    with pytest.raises(UnbalancedTransaction, match="kind"):
        txn(Posting("a", "eur", 1), Posting("b", "eur", -1), kind="gift")


def test_postings_must_be_posting_values() -> None:
    with pytest.raises(UnbalancedTransaction, match="Posting"):
        txn(("a", "eur", 1), ("b", "eur", -1))  # type: ignore[arg-type]


def test_debit_and_credit_signs() -> None:
    assert debit("a", "eur", 5).amount == 5
    assert credit("a", "eur", 5).amount == -5
    with pytest.raises(UnbalancedTransaction):
        debit("a", "eur", -5)
    with pytest.raises(UnbalancedTransaction):
        credit("a", "eur", -5)
    with pytest.raises(UnbalancedTransaction):
        credit("a", "eur", 0)


def test_same_postings_ignores_order_but_not_amounts() -> None:
    t = txn(Posting("a", "eur", 5), Posting("b", "eur", -5))
    assert t.same_postings([Posting("b", "eur", -5), Posting("a", "eur", 5)])
    assert not t.same_postings([Posting("b", "eur", -6), Posting("a", "eur", 6)])
    assert not t.same_postings([Posting("a", "eur", 5)])


def test_account_names_of_the_chart() -> None:
    assert receivable("cus_1") == "receivable:cus_1"
    assert pos_clearing("T1") == "pos_clearing:T1"
    assert vat_payable("ie") == "vat_payable:IE"
    # Greece's VAT prefix EL and its ISO code GR book to one account.
    assert vat_payable("EL") == vat_payable("GR") == "vat_payable:GR"
    for bad in ("", "IRL", "1E"):
        with pytest.raises(ValueError):
            vat_payable(bad)
    with pytest.raises(ValueError):
        receivable("")


def test_kinds_agree_with_the_table_definition() -> None:
    from engine.db.tables import LEDGER_KINDS as TABLE_KINDS

    assert TABLE_KINDS == LEDGER_KINDS
