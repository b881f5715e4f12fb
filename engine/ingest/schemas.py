"""Request bodies of the ingest's own routes (the kinds' request models live in their packages)."""

from __future__ import annotations

from typing import Literal

from engine.jobs.request import Strict


class ReviewDecision(Strict):
    decision: Literal["approve", "decline"]
