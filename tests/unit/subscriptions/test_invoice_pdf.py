"""Invoice PDFs: deterministic bytes, the scheme's legal wording, any language's letters; the number format."""

from __future__ import annotations

from typing import Any

import pytest

from engine.invoices.numbering import format_number, invoice_key
from engine.invoices.pdf import render, scheme_wording
from tests.fixtures.pdf import pdf_text


def _doc(scheme: str, **extra: Any) -> dict[str, Any]:
    return {
        "number": "2027-000042",
        "issued_at": "2027-03-01T10:00:00+00:00",
        "currency": "eur",
        "seller": {"country": "IE", "vat_id": "IE6388047V"},
        "customer": {"id": "cus_1", "email": "zoë@example.de", "country": "DE", "vat_id": "DE136695976"},
        "lines": [{"description": "Pro (monthly), 2027-03-01 to 2027-04-01", "amount": 2900}],
        "net": 2900,
        "vat_amount": 0,
        "total": 2900,
        "vat": {"country": "DE", "rate": "0", "scheme": scheme},
        **extra,
    }


def test_reverse_charge_wording_and_determinism() -> None:
    pdf = render(_doc("reverse_charge"))
    assert pdf.startswith(b"%PDF") and pdf == render(_doc("reverse_charge"))
    text = pdf_text(pdf)
    assert "Invoice 2027-000042" in text and "Reverse charge" in text and "29.00 EUR" in text
    assert "Reverse charge" not in pdf_text(render(_doc("domestic")))
    assert "One-Stop Shop" in scheme_wording("oss") and scheme_wording("domestic") == ""


def test_polish_czech_and_greek_names_print_as_written() -> None:
    # The core PDF fonts are Latin-1: these printed as "?" before the invoice embedded a Unicode font.
    doc = _doc(
        "domestic",
        seller={"country": "PL", "name": "Sklep Łódź sp. z o.o."},
        lines=[{"description": "Žluťoučký kůň, Ελλάδα", "amount": 2900}],
    )
    doc["customer"]["email"] = "zoë@example.de"
    text = pdf_text(render(doc))
    for word in ("Łódź", "Žluťoučký", "Ελλάδα", "zoë@example.de"):
        assert word in text, text


def test_number_format() -> None:
    assert format_number(2027, 1) == "2027-000001"
    assert format_number(2027, 999_999) == "2027-999999"
    with pytest.raises(ValueError):
        format_number(2027, 0)
    with pytest.raises(ValueError):
        format_number(2027, 1_000_000)
    assert invoice_key("IE 63/88", 2027, "2027-000001") == "invoices/IE_63_88/2027/2027-000001.pdf"
