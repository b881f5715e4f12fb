"""What every benchmark scenario returns: figures, each against a baseline measured in the same run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Figure:
    """One measured figure and its same-run baseline.  ``ratio`` = value / baseline.

    ``better`` says which direction is an improvement, so a reader knows whether a ratio of 0.1 is good.
    """

    scenario: str
    metric: str
    unit: str
    value: float
    baseline: float
    baseline_name: str
    better: Literal["lower", "higher"]
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.baseline == 0 else self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


class SkipScenario(Exception):
    """Raised by a scenario that cannot run on this machine; the message says why.

    Defined here, not in ``bench/__main__.py``: under ``python -m bench`` that module runs as ``__main__``, so a
    scenario importing ``bench.__main__`` would get a second copy of the class that the runner never catches.
    """


@dataclass(frozen=True)
class Skipped:
    """A scenario that could not run here (missing tool, missing module) and why."""

    scenario: str
    reason: str
