"""Render an OSS return (the JSON of :meth:`engine.reports.oss.OssReturn.to_json`) to PDF with fpdf2.

The PDF shows the period (and PRELIMINARY for the quarter in progress), the VAT due per member state, the supply
lines per state and rate, the corrections of earlier quarters, the exchange rates used, the excluded totals and
whether every figure agrees with the ledger.  Rendering is deterministic: the creation date is the period's last
day, so the same return renders to the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF

from engine.domain.money import format_amount


def _text(value: Any) -> str:
    # The core fonts are Latin-1.
    return str(value).encode("latin-1", "replace").decode("latin-1")


def _eur(cents: int) -> str:
    return format_amount(cents, "eur")


def _rate(rate: str | None) -> str:
    return f"{rate} %" if rate else "unknown"


def _table(pdf: FPDF, header: list[str], rows: list[list[str]], widths: list[int]) -> None:
    pdf.set_font("Helvetica", "B", 9)
    for text, width in zip(header, widths, strict=True):
        pdf.cell(width, 6, _text(text), border="B")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    if not rows:
        pdf.cell(sum(widths), 6, "none", new_x="LMARGIN", new_y="NEXT")
    for row in rows:
        for i, (text, width) in enumerate(zip(row, widths, strict=True)):
            pdf.cell(width, 6, _text(text), align="R" if i >= len(row) - 2 else "L")
        pdf.ln()
    pdf.ln(3)


def _heading(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 8, _text(text), new_x="LMARGIN", new_y="NEXT")


def render_oss_return(doc: dict[str, Any]) -> bytes:
    """The OSS return as PDF bytes.  Raises :class:`KeyError` when ``doc`` lacks a field of the return."""
    pdf = FPDF(format="A4")
    last = datetime.fromisoformat(doc["last_day"]).replace(tzinfo=UTC)
    pdf.set_creation_date(last)
    title = f"OSS VAT return {doc['period']}" + (" (PRELIMINARY)" if doc["preliminary"] else "")
    pdf.set_title(_text(title))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(
        0,
        5,
        _text(
            f"Union scheme, member state of identification {doc['seller_country']}. "
            f"Period {doc['first_day']} to {doc['last_day']}. Amounts in euro; "
            f"{doc['transactions']} ledger transactions read."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if doc["preliminary"]:
        pdf.set_font("Helvetica", "B", 10)
        pdf.multi_cell(
            0,
            5,
            "PRELIMINARY: the quarter is in progress; amounts are converted at the latest published ECB rate and "
            "will change.",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    pdf.ln(2)
    _heading(pdf, f"VAT due: {_eur(doc['total_vat_eur'])}")
    _table(
        pdf,
        ["Member state", "Supplies VAT", "Corrections", "Total VAT"],
        [
            [str(c["country"]), _eur(c["vat_eur"]), _eur(c["corrections_vat_eur"]), _eur(c["total_vat_eur"])]
            for c in doc["by_country"]
        ],
        [40, 50, 50, 50],
    )
    _heading(pdf, "Supplies per member state of consumption and VAT rate")
    supplies = [
        [str(s["country"]), _rate(s["vat_rate"]), _eur(s["taxable_eur"]), _eur(s["vat_eur"])] for s in doc["supplies"]
    ]
    _table(pdf, ["Member state", "VAT rate", "Taxable amount", "VAT"], supplies, [40, 40, 55, 55])
    _heading(pdf, "Corrections of earlier returns")
    corrections = [
        [c["period"], str(c["country"]), _rate(c["vat_rate"]), _eur(c["taxable_eur"]), _eur(c["vat_eur"])]
        for c in doc["corrections"]
    ]
    _table(pdf, ["Period", "Member state", "VAT rate", "Taxable amount", "VAT"], corrections, [30, 35, 30, 45, 50])
    _heading(pdf, "Exchange rates (ECB euro reference rates)")
    _table(
        pdf,
        ["Currency", "Published", "Basis", "Units per EUR"],
        [[r["currency"].upper(), r["date"], r["basis"], r["rate"]] for r in doc["exchange_rates"]],
        [20, 25, 115, 30],
    )
    _heading(pdf, "Not in this return (totals in their currency)")
    excluded = [
        [scheme.replace("_", " "), cur.upper(), format_amount(a["taxable"], cur), format_amount(a["vat"], cur)]
        for scheme, by_currency in doc["excluded"].items()
        for cur, a in by_currency.items()
    ]
    _table(pdf, ["Scheme", "Currency", "Taxable amount", "VAT"], excluded, [50, 30, 55, 55])
    pdf.set_font("Helvetica", "", 9)
    agree = "agree" if doc["agrees_with_ledger"] else "DO NOT AGREE"
    pdf.multi_cell(
        0,
        5,
        _text(
            "Supplies, refunds and VAT reconciled with the ledger's revenue, refunds and VAT payable accounts: "
            f"{agree}."
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for note in doc["notes"][:20]:
        pdf.multi_cell(0, 5, _text(f"Note: {note}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
