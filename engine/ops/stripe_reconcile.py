"""Reconcile the ledger with Stripe, per job: what a payments team runs every morning.

``payments reconcile stripe`` and the scheduler's daily ``stripe-reconcile`` task page through Stripe's
PaymentIntents and Refunds (every page, created since ``since``) and through the ledger's payment and refund
bookings, and report per job:

* ``duplicate_intent`` — more than one live PaymentIntent (succeeded, requires_capture, processing) carries the
  job's ``metadata.job_id``: the customer was charged twice;
* ``intent_not_booked`` / ``refund_not_booked`` — Stripe moved money (a succeeded intent; a succeeded or pending
  refund of an engine payment) and the ledger has no booking for it;
* ``booking_without_stripe`` — the ledger books a capture or a refund for which Stripe has no live object (never
  made, or a refund that failed and was not reversed);
* ``amount_mismatch`` — the booking and Stripe's object differ in amount or currency.

A booking and its Stripe object are matched by the engine's own marks: a charge booking (``payment:{job}:capture``,
or ``subscription:{job}:paid`` for a subscription's invoice) with the job's ``metadata.job_id`` intent; a refund
booking ``refund:{row}:issue`` (not reversed) with the ``refunds`` row's ``stripe_refund_id``.  Objects younger
than ``grace_seconds`` are left out (a job may be between its Stripe call and its booking), and an object outside
the ``since`` window that a booking names is fetched by id before it is called missing.  Read-only: it changes
nothing, it only reports.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import stripe

from engine.adapters.stripe_gateway import StripeGateway, metadata_of
from engine.db.tables import jobs, ledger_entries, ledger_transactions
from engine.db.tables_refunds import refunds

#: The kinds of finding, in report order.
FINDING_KINDS = (
    "duplicate_intent",
    "intent_not_booked",
    "refund_not_booked",
    "booking_without_stripe",
    "amount_mismatch",
)
#: Intent statuses under which the customer's money is (or may be) taken.
LIVE_INTENT = ("succeeded", "requires_capture", "processing")
#: Refund statuses under which the money went (or is going) back.
LIVE_REFUND = ("succeeded", "pending", "requires_action")
#: Seconds an object may legitimately wait for its booking (a job between its Stripe call and its ledger stage).
GRACE_SECONDS = 900
#: Effect keys of the bookings of a charge: a payment job's capture, a subscription job's collected invoice.
CAPTURE_KEYS = ("payment:%:capture", "subscription:%:paid")
#: The job id used for Stripe call accounting (breaker, metrics).
CALLER = "reconcile:stripe"


@dataclass(frozen=True)
class Finding:
    """One discrepancy: its kind, the job it concerns, the Stripe object (if any) and what differs."""

    kind: str
    job_id: str
    stripe_id: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "job": self.job_id, "stripe": self.stripe_id, "detail": self.detail}


@dataclass
class StripeReconcileReport:
    """What one run compared and found."""

    since: datetime | None
    intents: int = 0
    refunds: int = 0
    bookings: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def counts(self) -> dict[str, int]:
        """Findings per kind, every kind present (0 when none)."""
        out = dict.fromkeys(FINDING_KINDS, 0)
        for f in self.findings:
            out[f.kind] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "since": self.since.isoformat() if self.since else None,
            "checked": {"payment_intents": self.intents, "refunds": self.refunds, "bookings": self.bookings},
            "counts": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
        }

    def line(self) -> str:
        """The scheduler's one-line report."""
        found = ", ".join(f"{n} {k}" for k, n in self.counts().items() if n)
        head = f"{self.intents} intent(s), {self.refunds} refund(s), {self.bookings} booking(s) compared"
        return head + (f"; FOUND {found}" if found else "; ledger equals Stripe")


@dataclass(frozen=True)
class _Booking:
    job_id: str
    effect_key: str
    amount: int
    currency: str


def reconcile_stripe(
    db: sa.Engine,
    gateway: StripeGateway,
    *,
    since: datetime | None = None,
    grace_seconds: int = GRACE_SECONDS,
    now: float | None = None,
) -> StripeReconcileReport:
    """Compare Stripe with the ledger (see the module docstring) and report every discrepancy.

    Raises the SDK's :class:`stripe.StripeError` when Stripe cannot be read, and
    :class:`sqlalchemy.exc.SQLAlchemyError` when the database cannot.
    """
    report = StripeReconcileReport(since=since)
    cutoff = (now if now is not None else time.time()) - grace_seconds
    created = {"gte": int(since.timestamp())} if since else None

    intents = [pi for pi in _all(gateway, gateway.client.v1.payment_intents.list, created) if _job(pi)]
    report.intents = len(intents)
    by_job: dict[str, list[Any]] = defaultdict(list)
    for pi in intents:
        by_job[_job(pi)].append(pi)
    engine_intents = {pi.id for pi in intents}
    stripe_refunds = [
        r
        for r in _all(gateway, gateway.client.v1.refunds.list, created)
        if _job(r) or getattr(r, "payment_intent", None) in engine_intents
    ]
    report.refunds = len(stripe_refunds)

    payments, refund_bookings = _ledger(db, since)
    rows = _refund_rows(db, [r.id for r in stripe_refunds], list(refund_bookings))
    report.bookings = len(payments) + len(refund_bookings)
    found = report.findings

    # -- payments --------------------------------------------------------------------------------------------------
    for job_id, found_intents in sorted(by_job.items()):
        live = [pi for pi in found_intents if pi.status in LIVE_INTENT]
        if len(live) > 1:
            ids = ", ".join(sorted(pi.id for pi in live))
            found.append(Finding("duplicate_intent", job_id, live[0].id, f"{len(live)} live intents: {ids}"))
        booking = payments.pop(job_id, None)
        succeeded = [pi for pi in live if pi.status == "succeeded"]
        if booking is None:
            if _job_has_booking(db, job_id):
                continue  # booked before the window
            for pi in succeeded:
                if int(pi.created or 0) <= cutoff:
                    found.append(
                        Finding("intent_not_booked", job_id, pi.id, f"{pi.amount} {pi.currency} charged, not booked")
                    )
            continue
        if not succeeded:
            found.append(Finding("booking_without_stripe", job_id, None, f"{booking.effect_key}: no succeeded intent"))
            continue
        _compare(found, job_id, succeeded[0], int(succeeded[0].amount_received or succeeded[0].amount), booking)
    for job_id, booking in sorted(payments.items()):
        # Booked in the window, intent outside it (or none): ask Stripe for the job's intent directly.
        recorded = _recorded_intent(db, job_id)
        pi = _retrieve(gateway, gateway.client.v1.payment_intents.retrieve, recorded) if recorded else None
        if pi is None or pi.status != "succeeded":
            found.append(
                Finding("booking_without_stripe", job_id, recorded, f"{booking.effect_key}: no succeeded intent")
            )
        else:
            _compare(found, job_id, pi, int(pi.amount_received or pi.amount), booking)

    # -- refunds ---------------------------------------------------------------------------------------------------
    seen: set[str] = set()
    for r in stripe_refunds:
        row = rows.get(r.id)
        owner = row["id"] if row else (_job(r) or r.id)
        seen.add(r.id)
        is_live = r.status in LIVE_REFUND
        booking = refund_bookings.pop(str(row["id"]), None) if row else None
        if booking is None and row is not None and row["status"] in ("pending", "succeeded"):
            booking = _refund_booking(db, str(row["id"]))  # booked before the window
        if is_live and booking is None:
            if int(r.created or 0) <= cutoff:
                found.append(Finding("refund_not_booked", owner, r.id, f"{r.amount} {r.currency} refunded, not booked"))
        elif not is_live and booking is not None:
            found.append(
                Finding("booking_without_stripe", owner, r.id, f"{booking.effect_key}: Stripe refund {r.status}")
            )
        elif booking is not None:
            _compare(found, owner, r, int(r.amount), booking)
    for row_id, booking in sorted(refund_bookings.items()):
        stripe_id = next((k for k, v in rows.items() if str(v["id"]) == row_id), None)
        r = _retrieve(gateway, gateway.client.v1.refunds.retrieve, stripe_id) if stripe_id else None
        if r is None or r.status not in LIVE_REFUND:
            status = r.status if r is not None else "missing"
            found.append(Finding("booking_without_stripe", row_id, stripe_id, f"{booking.effect_key}: Stripe {status}"))
        elif r.id not in seen:
            _compare(found, row_id, r, int(r.amount), booking)
    found.sort(key=lambda f: (FINDING_KINDS.index(f.kind), f.job_id))
    return report


def _compare(found: list[Finding], job_id: str, obj: Any, amount: int, booking: _Booking) -> None:
    currency = str(obj.currency).lower()
    if amount != booking.amount or currency != booking.currency:
        found.append(
            Finding(
                "amount_mismatch",
                job_id,
                obj.id,
                f"Stripe {amount} {currency}, ledger {booking.amount} {booking.currency} ({booking.effect_key})",
            )
        )


def _job(obj: Any) -> str:
    return metadata_of(obj).get("job_id") or ""


def _all(gateway: StripeGateway, list_fn: Any, created: dict[str, int] | None) -> Iterator[Any]:
    """Every object of a Stripe list endpoint (all pages, newest first)."""
    params: dict[str, Any] = {"limit": 100}
    if created:
        params["created"] = created
    while True:
        page = gateway.call(CALLER, list_fn, params=params)
        yield from page.data
        if not page.has_more or not page.data:
            return
        params["starting_after"] = page.data[-1].id


def _retrieve(gateway: StripeGateway, fn: Any, object_id: str) -> Any | None:
    try:
        return gateway.call(CALLER, fn, object_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise


def _ledger(db: sa.Engine, since: datetime | None) -> tuple[dict[str, _Booking], dict[str, _Booking]]:
    """Payment bookings by job and unreversed refund bookings by ``refunds`` row id, created since ``since``."""
    t, e = ledger_transactions, ledger_entries
    query = (
        sa.select(t.c.effect_key, t.c.kind, e.c.currency, e.c.amount)
        .join(e, e.c.transaction_id == t.c.id)
        .where(
            e.c.account == "stripe_clearing",
            sa.or_(*[t.c.effect_key.like(p) for p in CAPTURE_KEYS], t.c.effect_key.like("refund:%:issue")),
        )
    )
    if since is not None:
        query = query.where(t.c.created_at >= since)
    payments: dict[str, _Booking] = {}
    issued: dict[str, _Booking] = {}
    with db.connect() as conn:
        for key, _kind, currency, amount in conn.execute(query):
            _, owner, _step = str(key).split(":", 2)
            cur = str(currency).strip()
            if not key.startswith("refund:") and amount > 0:
                payments[owner] = _Booking(owner, key, int(amount), cur)
            elif key.startswith("refund:") and amount < 0:
                issued[owner] = _Booking(owner, key, -int(amount), cur)
        reversed_rows = set(
            conn.execute(
                sa.select(sa.func.split_part(t.c.effect_key, ":", 2)).where(t.c.effect_key.like("refund:%:reverse"))
            ).scalars()
        )
    return payments, {k: v for k, v in issued.items() if k not in reversed_rows}


def _refund_rows(db: sa.Engine, stripe_ids: list[str], row_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ``refunds`` rows of these Stripe refunds or row ids that name a Stripe refund, by Stripe refund id."""
    found: dict[str, dict[str, Any]] = {}
    with db.connect() as conn:
        for start in range(0, max(len(stripe_ids), len(row_ids)), 1000):
            query = sa.select(refunds).where(
                refunds.c.stripe_refund_id.is_not(None),
                sa.or_(
                    refunds.c.stripe_refund_id.in_(stripe_ids[start : start + 1000]),
                    refunds.c.id.in_(row_ids[start : start + 1000]),
                ),
            )
            found.update({str(r["stripe_refund_id"]): dict(r) for r in conn.execute(query).mappings()})
    return found


def _job_has_booking(db: sa.Engine, job_id: str) -> bool:
    with db.connect() as conn:
        return (
            conn.execute(
                sa.select(ledger_transactions.c.id).where(
                    ledger_transactions.c.effect_key == f"payment:{job_id}:capture"
                )
            ).first()
            is not None
        )


def _refund_booking(db: sa.Engine, row_id: str) -> _Booking | None:
    t, e = ledger_transactions, ledger_entries
    with db.connect() as conn:
        reversed_ = conn.execute(sa.select(t.c.id).where(t.c.effect_key == f"refund:{row_id}:reverse")).first()
        if reversed_ is not None:
            return None
        row = conn.execute(
            sa.select(e.c.currency, e.c.amount)
            .join(t, t.c.id == e.c.transaction_id)
            .where(t.c.effect_key == f"refund:{row_id}:issue", e.c.account == "stripe_clearing", e.c.amount < 0)
        ).first()
    if row is None:
        return None
    return _Booking(row_id, f"refund:{row_id}:issue", -int(row[1]), str(row[0]).strip())


def _recorded_intent(db: sa.Engine, job_id: str) -> str | None:
    with db.connect() as conn:
        value = conn.execute(
            sa.select(jobs.c.stage_results["charge"]["payment_intent"].astext).where(jobs.c.id == job_id)
        ).scalar_one_or_none()
    return str(value) if value else None


def run_task(db: sa.Engine, stripe_or_none: StripeGateway | None, now: datetime) -> str:
    """The scheduler's daily ``stripe-reconcile`` task: reconcile the last two days and set
    ``payments_stripe_reconcile_findings{kind}`` (the ``StripeLedgerMismatch`` alert reads it).  ``now`` is the
    pass's moment; the window is the 48 hours before it, so a daily run overlaps the previous one."""
    from datetime import timedelta

    from engine.runtime import metrics

    if stripe_or_none is None:
        return "skipped: Stripe is not configured"
    report = reconcile_stripe(db, stripe_or_none, since=now - timedelta(days=2), now=now.timestamp())
    for kind, count in report.counts().items():
        metrics.STRIPE_RECONCILE_FINDINGS.labels(kind).set(count)
    return report.line()
