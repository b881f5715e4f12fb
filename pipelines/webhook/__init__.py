"""The webhook pipeline: one ``handle`` stage dispatching Stripe events (``pipelines/webhook/handle.py``)."""

from __future__ import annotations

from engine.jobs.pipeline import Pipeline
from pipelines.webhook.handle import HandleStage

__all__ = ["HandleStage", "webhook_pipeline"]


def webhook_pipeline(handle: HandleStage) -> Pipeline:
    """The stages in order."""
    return Pipeline("webhook", (handle,))
