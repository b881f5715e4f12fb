"""Render an invoice document (the ``invoices.document`` JSON) to PDF with fpdf2.

The PDF shows the seller, the customer, the invoice number and date, one line per item (net), the VAT line as
the VAT stage decided it, the total, and the legal wording the scheme needs (reverse charge, OSS, outside scope).
Rendering is deterministic: the PDF's creation date is the invoice date, so a re-render is the same document.
Text is set in Fira Sans (the ``fontpkg-fira-sans`` package, SIL Open Font License), embedded and subset: the core
PDF fonts are Latin-1 only, and customers are named in Polish, Czech, Greek, ...
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import fontpkg
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


#: The family name the document uses for its embedded font.
FONT = "FiraSans"
#: fpdf2 style -> the font file's weight.  Static files: a variable font's instancing takes seconds per document.
_WEIGHTS = {"": 400, "B": 700}


@cache
def font_path(weight: int) -> Path:
    """The Fira Sans TTF of ``weight`` the invoices embed.  Raises :class:`fontpkg.errors.FontpkgError` (from
    :func:`fontpkg.path`) when the package is not installed."""
    return Path(fontpkg.path("Fira Sans", weight=weight))


def _add_fonts(pdf: FPDF) -> None:
    for style, weight in _WEIGHTS.items():
        pdf.add_font(FONT, style, font_path(weight))


def scheme_wording(scheme: str) -> str:
    """The legal sentence an invoice of this VAT scheme carries ('' for domestic)."""
    return SCHEME_WORDING.get(scheme, "")


def render(document: dict[str, Any]) -> bytes:
    """The invoice (or credit note: ``title`` and ``credits``) as PDF bytes.  Raises :class:`KeyError` when
    ``document`` lacks a required field."""
    cur = document["currency"]
    title = f"{document.get('title') or 'Invoice'} {document['number']}"
    vat = document["vat"]
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime.fromisoformat(document["issued_at"]))
    pdf.set_title(title)
    pdf.set_author(str(document["seller"].get("name") or document["seller"]["country"]))
    _add_fonts(pdf)
    pdf.add_page()
    pdf.set_font(FONT, "B", 18)
    pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
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
    credits = document.get("credits")
    if credits:
        head.append(f"Credits invoice {credits['number']}")
    if document.get("subscription"):
        head.append(f"Subscription: {document['subscription']}")
    if document.get("payment_intent"):
        head.append(f"Payment: {document['payment_intent']}")
    for line in head:
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(FONT, "B", 10)
    pdf.cell(140, 7, "Description", border="B")
    pdf.cell(0, 7, "Amount (net)", border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    for item in document["lines"]:
        pdf.cell(140, 7, str(item["description"]))
        pdf.cell(0, 7, str(format_amount(int(item["amount"]), cur)), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    totals = [
        ("Net", document["net"]),
        (f"VAT {vat['rate']}% ({vat['country']}, {vat['scheme']})", document["vat_amount"]),
        ("Total", document["total"]),
    ]
    if document.get("credit_applied"):
        # Paid in part (or in full) from the customer's credit: what Stripe charged is the rest.
        totals += [
            ("Credit applied", -int(document["credit_applied"])),
            ("Amount paid", int(document["total"]) - int(document["credit_applied"])),
        ]
    for label, amount in totals:
        pdf.set_font(FONT, "B" if label == "Total" else "", 10)
        pdf.cell(140, 7, str(label), align="R")
        pdf.cell(0, 7, str(format_amount(int(amount), cur)), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 9)
    pdf.ln(4)
    for note in [scheme_wording(vat["scheme"]), *document.get("notes", [])]:
        if note:
            pdf.multi_cell(0, 5, str(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
