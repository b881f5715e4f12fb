"""Typed stage outputs: what a completed stage keeps for the stages after it (and for a resumed job).

Each stage's output is a small frozen dataclass deriving from :class:`StageOutput`, named by the stage it belongs
to (``STAGE``).  The runner stores it as JSON under ``jobs.stage_results[STAGE]``; a later stage reads it back
with :meth:`engine.jobs.job.Job.output`::

    amounts = job.output(VatOutput)      # StageNotRun when the vat stage has not completed

The JSON is the dataclass's fields, one key each, tuples written as lists — so what was stored before outputs
were typed reads back unchanged.  A subclass whose stored shape has optional keys overrides :meth:`to_json`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from engine.errors import InvalidInput, NotFoundError


class StageNotRun(NotFoundError):
    """A stage's output was asked for, but the job has none: the stage has not completed (or produced nothing)."""


class OutputMismatch(InvalidInput):
    """Stored JSON that does not fit the output class it is read as (a missing field)."""


class StageOutput:
    """Base of every stage output.  Subclasses are ``@dataclass(frozen=True)`` and set ``STAGE``."""

    STAGE: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        """The output as stored: one key per field, tuples as lists."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The output stored as ``data`` (lists read back as tuples where a field is declared a tuple).  Keys this
        class does not know are ignored; a missing field without a default raises :class:`OutputMismatch`."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        try:
            return cls(**{k: _typed(fields[k], v) for k, v in data.items() if k in fields})
        except TypeError as exc:
            raise OutputMismatch(f"stored {cls.STAGE!r} output does not fit {cls.__name__}: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class LedgerOutput(StageOutput):
    """The output of a stage that books one ledger transaction: its effect key."""

    STAGE = "ledger"

    effect_key: str


def _typed(field: dataclasses.Field[Any], value: Any) -> Any:
    declared = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    if isinstance(value, list) and declared.startswith("tuple"):
        return tuple(value)
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
