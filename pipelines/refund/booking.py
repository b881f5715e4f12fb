"""How a Stripe refund's booking follows Stripe: booked once when Stripe takes it, settled or reversed later.

Stripe debits the balance when it accepts a refund, even one that stays ``pending`` (card refunds), and credits it
back if the refund later fails.  The ledger follows that: a refund is booked once (effect ``refund:{row}:issue``,
``row`` being the ``refunds`` row: the refund job's id, or the Stripe refund id for one made in the dashboard) and
its row records whether Stripe settled it (``pending`` → ``succeeded``).  A refund that fails after it was booked
is reversed once (effect ``refund:{row}:reverse``, the issue's postings negated) and its row becomes ``reversed``,
so it stops counting against what remains refundable; one that fails before it was booked only releases its
reservation (``failed``).  Everything here runs inside the caller's transaction, under the payment's row lock.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.db.ledger import record
from engine.db.tables import ledger_entries, ledger_transactions
from engine.db.tables_refunds import BOOKED_STATUSES, refunds
from engine.domain.ledger import LedgerTransaction, Posting

#: Stripe refund statuses that moved money (a ``pending`` one may still fail).
LIVE = ("succeeded", "pending", "requires_action")
#: Stripe refund statuses after which no money moved.
DEAD = ("failed", "canceled")


def row_status(stripe_status: str) -> str:
    """The ``refunds`` status of a booked refund whose Stripe status is ``stripe_status``."""
    return "succeeded" if stripe_status == "succeeded" else "pending"


def issue_key(row_id: str) -> str:
    """The effect key of a refund row's booking."""
    return f"refund:{row_id}:issue"


def reverse_key(row_id: str) -> str:
    """The effect key of the reversal of a refund row's booking."""
    return f"refund:{row_id}:reverse"


def settle(conn: sa.Connection, row_id: str, stripe_refund: Any, job_id: str | None) -> str:
    """Bring the row ``row_id`` in line with ``stripe_refund`` (Stripe's current object) and say what changed.

    ``succeeded`` settles a ``pending`` row; ``failed``/``canceled`` reverses a booked row (``reversed``) or releases
    an unbooked reservation (``failed``).  Returns ``settled``, ``reversed``, ``released`` or ``unchanged``.  The
    caller holds the payment's row lock.  Raises :class:`engine.db.ledger.EffectConflict` if a reversal was booked
    differently before.
    """
    row = conn.execute(sa.select(refunds).where(refunds.c.id == row_id).with_for_update()).mappings().one_or_none()
    if row is None:
        return "unchanged"
    status = str(stripe_refund.status)
    if status == "succeeded" and row["status"] == "pending":
        _set(conn, row_id, "succeeded")
        return "settled"
    if status not in DEAD:
        return "unchanged"
    if row["status"] in BOOKED_STATUSES:
        reversal = reversal_of(conn, row_id, str(stripe_refund.id), job_id)
        if reversal is not None:
            record(conn, reversal)
        _set(conn, row_id, "reversed")
        return "reversed"
    if row["status"] == "reserved":
        _set(conn, row_id, "failed")
        return "released"
    return "unchanged"


def reversal_of(
    conn: sa.Connection, row_id: str, stripe_refund_id: str, job_id: str | None
) -> LedgerTransaction | None:
    """The transaction reversing the booking of ``row_id`` (its postings negated), or None when none was booked."""
    rows = conn.execute(
        sa.select(
            ledger_entries.c.account, ledger_entries.c.currency, ledger_entries.c.amount, ledger_transactions.c.metadata
        )
        .join(ledger_transactions, ledger_transactions.c.id == ledger_entries.c.transaction_id)
        .where(ledger_transactions.c.effect_key == issue_key(row_id))
    ).all()
    if not rows:
        return None
    # The issue's metadata (payment, customer, VAT rate and scheme) carries over: reports net the two.
    original = dict(rows[0][3] or {})
    return LedgerTransaction(
        effect_key=reverse_key(row_id),
        kind="refund",
        postings=tuple(Posting(str(a), str(c).strip(), -int(v)) for a, c, v, _ in rows),
        job_id=job_id,
        description=f"reversal of refund {row_id}: Stripe refund {stripe_refund_id} failed",
        metadata={**original, "stripe_refund": stripe_refund_id, "reverses": issue_key(row_id)},
    )


def _set(conn: sa.Connection, row_id: str, status: str) -> None:
    conn.execute(refunds.update().where(refunds.c.id == row_id).values(status=status, updated_at=sa.func.now()))
