"""Render an invoice document (the ``invoices.document`` JSON) to PDF with fpdf2.

The PDF shows the seller, the customer, the invoice number and date, one line per item (net), the VAT line as
the VAT stage decided it, the total, and the legal wording the scheme needs (reverse charge, OSS, outside scope).
Rendering is deterministic: the PDF's creation date is the invoice date, so a re-render is the same document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fpdf import FPDF

from engine.domain.money import format_amount

#: Wording printed under the totals, by VAT scheme.
SCHEME_WORDING = {
    "reverse_charge": (
        "Reverse charge: VAT to be accounted for by the recipient "
        "(Article 196, Council Directive 2006/112/EC). No VAT charged."
    ),
    "oss": "VAT charged at the rate of the customer's member state under the One-Stop Shop (OSS) scheme.",
    "outside_scope": "Supply outside the scope of EU VAT. No VAT charged.",
    "domestic": "",
}


def _text(value: Any) -> str:
    # The core fonts are Latin-1; anything else is shown as '?' rather than failing the invoice.
    return str(value).encode("latin-1", "replace").decode("latin-1")


def scheme_wording(scheme: str) -> str:
    """The legal sentence an invoice of this VAT scheme carries ('' for domestic)."""
    return SCHEME_WORDING.get(scheme, "")


def render(document: dict[str, Any]) -> bytes:
    """The invoice as PDF bytes.  Raises :class:`KeyError` when ``document`` lacks a required field."""
    cur = document["currency"]
    vat = document["vat"]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.fromisoformat(document["issued_at"]))
    pdf.set_title(_text(f"Invoice {document['number']}"))
    pdf.set_author(_text(document["seller"].get("name") or document["seller"]["country"]))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _text(f"Invoice {document['number']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    issued = datetime.fromisoformat(document["issued_at"]).date().isoformat()
    seller = document["seller"]
    customer = document["customer"]
    head = [
        f"Date of issue: {issued}",
        f"Seller: {seller.get('name') or 'Seller'} ({seller['country']})"
        + (f", VAT id {seller['vat_id']}" if seller.get("vat_id") else ""),
        f"Customer: {customer['id']} <{customer.get('email', '')}> ({customer['country']})"
        + (f", VAT id {customer['vat_id']}" if customer.get("vat_id") else ""),
    ]
    if document.get("subscription"):
        head.append(f"Subscription: {document['subscription']}")
    if document.get("payment_intent"):
        head.append(f"Payment: {document['payment_intent']}")
    for line in head:
        pdf.cell(0, 6, _text(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(140, 7, "Description", border="B")
    pdf.cell(0, 7, "Amount (net)", border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for item in document["lines"]:
        pdf.cell(140, 7, _text(item["description"]))
        pdf.cell(0, 7, _text(format_amount(int(item["amount"]), cur)), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    totals = [
        ("Net", document["net"]),
        (f"VAT {vat['rate']}% ({vat['country']}, {vat['scheme']})", document["vat_amount"]),
        ("Total", document["total"]),
    ]
    for label, amount in totals:
        pdf.set_font("Helvetica", "B" if label == "Total" else "", 10)
        pdf.cell(140, 7, _text(label), align="R")
        pdf.cell(0, 7, _text(format_amount(int(amount), cur)), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.ln(4)
    for note in [scheme_wording(vat["scheme"]), *document.get("notes", [])]:
        if note:
            pdf.multi_cell(0, 5, _text(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
