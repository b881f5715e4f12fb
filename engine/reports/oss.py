"""The One-Stop Shop VAT return of a quarter, computed from the ledger's postings (docs/reports.md).

* **Supplies**: the OSS sales booked in the quarter, per member state of consumption and VAT rate — taxable
  amount and VAT in euro.  A refund booked in the same quarter reduces its sale's line.
* **Corrections**: a refund booked in this quarter of an OSS sale booked in an *earlier* quarter is a correction
  of that quarter's return, listed under that quarter and member state (negative), converted as that quarter was.
* **Excluded**: domestic sales (the seller's own state, POS settlements), B2B reverse-charge sales, sales outside
  the scope of EU VAT and anything else moving revenue, totalled per currency — so that OSS + excluded equals the
  ledger's revenue for the quarter (:attr:`OssReturn.reconciliation` checks it per currency, and the same for
  refunds and VAT).

Conversion (:mod:`engine.domain.conversion`): each (state, rate, currency) group's taxable amount and VAT are
converted to euro separately, at the ECB rate published for the quarter's last day or the next publication; the
euro lines are then summed.  The quarter in progress gives a **preliminary** return at the latest rate published
up to today, marked as such.  A currency without the rate raises :class:`~engine.domain.conversion.RateMissing`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from engine.db.rates import load_latest, load_window, period_end_window
from engine.domain.conversion import EURO, Rate, RateTable, convert
from engine.reports.ledger_reader import (
    BookedTransaction,
    account_totals,
    read_transactions,
    sales_of_jobs,
    totals_by_class,
)
from engine.reports.periods import Period, parse_period, quarter_of
from engine.reports.sales import SCHEMES, Refund, Sale, refunds_in, sales_in

#: Columns of the return's CSV (one row per supply line, correction line and excluded total).
LINE_COLUMNS = (
    "section",
    "period",
    "country",
    "vat_rate",
    "currency",
    "taxable",
    "vat",
    "exchange_rate",
    "exchange_rate_date",
    "taxable_eur",
    "vat_eur",
)
#: Columns of the transactions CSV (one row per sale or refund the return read).
TRANSACTION_COLUMNS = (
    "transaction_id",
    "effect_key",
    "booked_at",
    "kind",
    "part",
    "country",
    "vat_rate",
    "terms",
    "currency",
    "taxable",
    "vat",
    "corrects",
)

Group = tuple[str | None, str | None, str]  # (country, rate, currency)


@dataclass
class Amounts:
    """A taxable amount and its VAT, in minor units of one currency."""

    taxable: int = 0
    vat: int = 0

    def add(self, taxable: int, vat: int) -> None:
        self.taxable += taxable
        self.vat += vat


@dataclass(frozen=True)
class ConvertedLine:
    """One (state, rate) line of the return with its parts per currency, all converted to euro."""

    period: str
    country: str | None
    rate: str | None
    taxable_eur: int
    vat_eur: int
    parts: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "country": self.country,
            "vat_rate": self.rate,
            "taxable_eur": self.taxable_eur,
            "vat_eur": self.vat_eur,
            "currencies": self.parts,
        }


@dataclass
class OssReturn:
    """A quarter's OSS return; every amount is an int of minor units (euro cents for ``*_eur``)."""

    period: Period
    preliminary: bool
    seller_country: str
    supplies: list[ConvertedLine]
    corrections: list[ConvertedLine]
    excluded: dict[str, dict[str, dict[str, int]]]
    reconciliation: dict[str, dict[str, dict[str, Any]]]
    rates: list[dict[str, str]]
    transactions: int
    notes: list[str] = field(default_factory=list)

    @property
    def total_vat_eur(self) -> int:
        """The VAT due: supplies plus corrections, in euro cents."""
        return sum(s.vat_eur for s in self.supplies) + sum(c.vat_eur for c in self.corrections)

    @property
    def agrees(self) -> bool:
        """True when every reconciliation of every currency agrees with the ledger's accounts."""
        return all(part["agrees"] for cur in self.reconciliation.values() for part in cur.values())

    def by_country(self) -> list[dict[str, Any]]:
        """Per member state: the VAT of the quarter's supplies, of its corrections, and their sum (euro cents)."""
        supplies: dict[str | None, int] = defaultdict(int)
        corrections: dict[str | None, int] = defaultdict(int)
        for s in self.supplies:
            supplies[s.country] += s.vat_eur
        for c in self.corrections:
            corrections[c.country] += c.vat_eur
        countries = sorted(set(supplies) | set(corrections), key=lambda c: c or "")
        return [
            {
                "country": c,
                "vat_eur": supplies[c],
                "corrections_vat_eur": corrections[c],
                "total_vat_eur": supplies[c] + corrections[c],
            }
            for c in countries
        ]

    def to_json(self) -> dict[str, Any]:
        """The return as JSON-able data."""
        return {
            "type": "oss_return",
            "period": self.period.label,
            "first_day": self.period.first.isoformat(),
            "last_day": self.period.last.isoformat(),
            "preliminary": self.preliminary,
            "seller_country": self.seller_country,
            "total_vat_eur": self.total_vat_eur,
            "by_country": self.by_country(),
            "supplies": [s.to_json() for s in self.supplies],
            "corrections": [c.to_json() for c in self.corrections],
            "excluded": self.excluded,
            "reconciliation": self.reconciliation,
            "agrees_with_ledger": self.agrees,
            "exchange_rates": self.rates,
            "transactions": self.transactions,
            "notes": self.notes,
        }

    def lines(self) -> Iterator[dict[str, Any]]:
        """The return's CSV rows (:data:`LINE_COLUMNS`): supplies, corrections, then excluded totals."""
        for section, converted in (("supply", self.supplies), ("correction", self.corrections)):
            for line in converted:
                for part in line.parts:
                    yield {
                        "section": section,
                        "period": line.period,
                        "country": line.country,
                        "vat_rate": line.rate,
                        **part,
                    }
        for scheme, by_currency in self.excluded.items():
            for cur, amounts in by_currency.items():
                yield {
                    "section": f"excluded:{scheme}",
                    "period": self.period.label,
                    "currency": cur,
                    "taxable": amounts["taxable"],
                    "vat": amounts["vat"],
                }


def compute_oss_return(
    conn: sa.Connection,
    period: Period,
    *,
    seller_country: str,
    today: date,
    on_transaction: Callable[[dict[str, Any]], None] | None = None,
) -> OssReturn:
    """The OSS return of ``period`` (a quarter) read on ``conn``: call it inside one (read-only, repeatable read)
    transaction so every figure comes from the same snapshot.  ``on_transaction`` receives one row
    (:data:`TRANSACTION_COLUMNS`) per sale and refund read, as they are read (the streamed detail file).

    Raises :class:`~engine.domain.conversion.RateMissing` when a needed ECB rate is not stored, and
    :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot be read.
    """
    emit = on_transaction or (lambda row: None)
    supplies: dict[Group, Amounts] = defaultdict(Amounts)
    corrections: dict[str, dict[Group, Amounts]] = defaultdict(lambda: defaultdict(Amounts))
    sales: dict[str, dict[str, Amounts]] = defaultdict(lambda: {s: Amounts() for s in SCHEMES})
    refunded: dict[str, dict[str, Amounts]] = defaultdict(
        lambda: {p: Amounts() for p in ("oss_same_period", "oss_corrections", "other")}
    )
    pending: list[Refund] = []
    notes: list[str] = []
    count = 0
    for txn in read_transactions(conn, period.start, period.end):
        count += 1
        for sale in sales_in(txn, seller_country):
            sales[sale.currency][sale.scheme].add(sale.net, sale.vat)
            if sale.scheme == "oss":
                supplies[(sale.country, sale.rate, sale.currency)].add(sale.net, sale.vat)
                if sale.rate is None:
                    notes.append(f"{txn.effect_key}: OSS sale to {sale.country} whose VAT rate is unknown")
            emit(_row(txn, sale.scheme, sale.country, sale.rate, sale.terms, sale.currency, sale.net, sale.vat))
        pending.extend(refunds_in(txn))

    originals = sales_of_jobs(conn, [r.payment for r in pending if r.payment])
    for refund in pending:
        original = _sale_refunded(originals.get(refund.payment or ""), refund, seller_country)
        cur, txn = refund.currency, refund.transaction
        if original is None:
            refunded[cur]["other"].add(refund.net, refund.vat)
            if txn.kind == "refund":
                notes.append(f"{txn.effect_key}: the sale it refunds is not in the ledger; not an OSS correction")
            emit(_row(txn, "refund", refund.country, None, "unknown", cur, -refund.net, -refund.vat))
            continue
        if original.scheme != "oss":
            refunded[cur]["other"].add(refund.net, refund.vat)
            emit(_row(txn, f"refund:{original.scheme}", original.country, original.rate, original.terms, cur,
                      -refund.net, -refund.vat))  # fmt: skip
            continue
        group = (original.country, original.rate, cur)
        if period.contains(original.transaction.booked_at):
            supplies[group].add(-refund.net, -refund.vat)
            refunded[cur]["oss_same_period"].add(refund.net, refund.vat)
            emit(_row(txn, "oss_refund", original.country, original.rate, original.terms, cur,
                      -refund.net, -refund.vat))  # fmt: skip
        else:
            corrected = quarter_of(original.transaction.booked_at.date()).label
            corrections[corrected][group].add(-refund.net, -refund.vat)
            refunded[cur]["oss_corrections"].add(refund.net, refund.vat)
            emit(_row(txn, "oss_correction", original.country, original.rate, original.terms, cur,
                      -refund.net, -refund.vat, corrected))  # fmt: skip

    preliminary = period.in_progress(today)
    rates_used: list[dict[str, str]] = []
    rate_of: Callable[[str], Rate]
    if preliminary:
        latest = load_latest(conn, {cur for _, _, cur in supplies}, today)

        def rate_of(cur: str) -> Rate:
            return latest.latest_rate(cur, today)

        basis = f"preliminary: latest rate published on or before {today.isoformat()}"
    else:
        rate_of = _period_end(load_window(conn, *period_end_window(period.last)), period.last)
        basis = f"ECB rate for {period.last.isoformat()} (or the next publication)"
    supply_lines = _convert(period.label, supplies, rate_of, basis, rates_used)
    correction_lines: list[ConvertedLine] = []
    for label in sorted(corrections):
        last = parse_period(label, ("quarter",)).last
        correction_lines += _convert(
            label,
            corrections[label],
            _period_end(load_window(conn, *period_end_window(last)), last),
            f"correction of {label}: ECB rate for {last.isoformat()} (or the next publication)",
            rates_used,
        )

    totals = account_totals(conn, period.start, period.end)
    reconciliation = _reconcile(sales, refunded, totals)
    excluded: dict[str, dict[str, dict[str, int]]] = {
        scheme: {cur: {"taxable": by[scheme].taxable, "vat": by[scheme].vat} for cur, by in sorted(sales.items())
                 if by[scheme].taxable or by[scheme].vat}
        for scheme in SCHEMES
        if scheme != "oss"
    }  # fmt: skip
    return OssReturn(
        period=period,
        preliminary=preliminary,
        seller_country=seller_country.upper(),
        supplies=supply_lines,
        corrections=correction_lines,
        excluded=excluded,
        reconciliation=reconciliation,
        rates=rates_used,
        transactions=count,
        notes=notes,
    )


def _sale_refunded(original: BookedTransaction | None, refund: Refund, seller_country: str) -> Sale | None:
    if original is None:
        return None
    for sale in sales_in(original, seller_country):
        if sale.currency == refund.currency:
            return sale
    return None


def _row(
    txn: BookedTransaction,
    part: str,
    country: str | None,
    rate: str | None,
    terms: str,
    cur: str,
    taxable: int,
    vat: int,
    corrects: str | None = None,
) -> dict[str, Any]:
    return {
        "transaction_id": txn.id,
        "effect_key": txn.effect_key,
        "booked_at": txn.booked_at.isoformat(),
        "kind": txn.kind,
        "part": part,
        "country": country,
        "vat_rate": rate,
        "terms": terms,
        "currency": cur,
        "taxable": taxable,
        "vat": vat,
        "corrects": corrects,
    }


def _convert(
    label: str,
    groups: dict[Group, Amounts],
    rate_of: Callable[[str], Rate],
    basis: str,
    rates_used: list[dict[str, str]],
) -> list[ConvertedLine]:
    """One line per (country, rate), each currency's taxable amount and VAT converted to euro separately."""
    by_line: dict[tuple[str | None, str | None], list[tuple[str, Amounts]]] = defaultdict(list)
    for (country, rate, cur), amounts in groups.items():
        if amounts.taxable or amounts.vat:
            by_line[(country, rate)].append((cur, amounts))
    lines = []
    for (country, rate), parts in sorted(by_line.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        converted: list[dict[str, Any]] = []
        for cur, amounts in sorted(parts, key=lambda p: p[0]):
            fx = rate_of(cur)
            euro = Rate.euro(fx.day)
            if fx.currency != EURO:
                used = {**fx.to_json(), "basis": basis}
                if used not in rates_used:
                    rates_used.append(used)
            converted.append(
                {
                    "currency": cur,
                    "taxable": amounts.taxable,
                    "vat": amounts.vat,
                    "exchange_rate": str(fx.value) if fx.currency != EURO else None,
                    "exchange_rate_date": fx.day.isoformat() if fx.currency != EURO else None,
                    "taxable_eur": convert(amounts.taxable, fx, euro),
                    "vat_eur": convert(amounts.vat, fx, euro),
                }
            )
        lines.append(
            ConvertedLine(
                period=label,
                country=country,
                rate=rate,
                taxable_eur=sum(p["taxable_eur"] for p in converted),
                vat_eur=sum(p["vat_eur"] for p in converted),
                parts=converted,
            )
        )
    return lines


def _period_end(table: RateTable, last: date) -> Callable[[str], Rate]:
    def rate_of(cur: str) -> Rate:
        return table.period_end_rate(cur, last)

    return rate_of


def _reconcile(
    sales: dict[str, dict[str, Amounts]],
    refunded: dict[str, dict[str, Amounts]],
    totals: list[Any],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per currency: sales by scheme against the ``revenue`` account, refunds by part against ``refunds``, and
    VAT charged less VAT refunded against the ``vat_payable`` accounts (every figure in minor units)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cur in sorted({*sales, *refunded, *(t.currency for t in totals)}):
        ledger = totals_by_class(totals, cur)
        by_scheme = sales.get(cur) or {s: Amounts() for s in SCHEMES}
        by_part = refunded.get(cur) or {}
        sale_total = sum(a.taxable for a in by_scheme.values())
        refund_total = sum(a.taxable for a in by_part.values())
        vat_charged = sum(a.vat for a in by_scheme.values())
        vat_refunded = sum(a.vat for a in by_part.values())
        if not (sale_total or refund_total or vat_charged or vat_refunded or ledger["revenue"] or ledger["refunds"]):
            continue
        out[cur] = {
            "sales": {
                **{s: by_scheme[s].taxable for s in SCHEMES},
                "total": sale_total,
                "ledger_revenue": -ledger["revenue"],
                "agrees": sale_total == -ledger["revenue"],
            },
            "refunds": {
                **{p: a.taxable for p, a in by_part.items()},
                "total": refund_total,
                "ledger_refunds": ledger["refunds"],
                "agrees": refund_total == ledger["refunds"],
            },
            "vat": {
                "charged": vat_charged,
                "refunded": vat_refunded,
                "net": vat_charged - vat_refunded,
                "ledger_vat_payable": -ledger["vat_payable"],
                "agrees": vat_charged - vat_refunded == -ledger["vat_payable"],
            },
        }
    return out
