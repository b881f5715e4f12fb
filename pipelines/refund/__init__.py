"""The refund pipeline: amount → refund → ledger → notify.  One small module per stage.

The runner (:class:`pipelines.refund.holds.RefundRunner`) holds a refund whose payment has not settled before any
stage runs; see ``docs/refunds.md``.
"""

from __future__ import annotations

from engine.jobs.notify import NotifyStage
from engine.jobs.pipeline import Pipeline
from pipelines.refund.amount import AmountStage
from pipelines.refund.ledger import LedgerStage
from pipelines.refund.stripe_refund import RefundStage

__all__ = ["AmountStage", "LedgerStage", "NotifyStage", "RefundStage", "refund_pipeline"]


def refund_pipeline(amount: AmountStage, refund: RefundStage) -> Pipeline:
    """The stages in order; adding a stage is one module and one entry here."""
    return Pipeline("refund", (amount, refund, LedgerStage(), NotifyStage()))
