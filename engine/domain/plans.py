"""The plans catalogue (``config/plans.json``): what a subscription bills, how often, and how it is taxed.

Amounts are net (VAT exclusive, as a Stripe price with ``tax_behavior: exclusive``) in minor units of the plan's
currency.  ``refund_on_cancel`` (optional, default ``none``) says what an immediate cancel gives back: ``prorated``
refunds the unused share of the current period's charges (pipelines/subscription/cancel_refunds.py), ``none``
nothing (the subscription ends at once either way).

The catalogue is validated as a whole when it is loaded (ingest and worker start-up); any problem is a
:class:`PlanCatalogueError` naming the file and the offending entry.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from engine.domain.money import AmountNotChargeable, UnknownCurrency, check_chargeable, currency
from engine.errors import InvalidInput, NotFoundError

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "plans.json"
INTERVALS = ("month", "year")
TAX_CATEGORIES = ("standard", "reduced", "super_reduced")
MAX_TRIAL_DAYS = 730
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELDS = {"id", "name", "amount", "currency", "interval", "tax_category", "trial_days"}
#: Fields a plan may leave out, with their default.
_OPTIONAL = {"refund_on_cancel": "none"}
REFUND_ON_CANCEL = ("prorated", "none")

Interval = Literal["month", "year"]
RefundOnCancel = Literal["prorated", "none"]


class PlanCatalogueError(InvalidInput):
    """The plans catalogue cannot be used (unreadable, malformed, or an invalid plan)."""


class UnknownPlan(NotFoundError):
    """No plan has this id."""


@dataclass(frozen=True)
class Plan:
    """One plan: ``amount`` is net, in minor units of ``currency`` (lower case)."""

    id: str
    name: str
    amount: int
    currency: str
    interval: Interval
    tax_category: str
    trial_days: int
    #: What an immediate cancel refunds: the unused share of the current period (``prorated``) or nothing.
    refund_on_cancel: RefundOnCancel = "none"

    def as_dict(self) -> dict[str, Any]:
        """The plan as ``payments plans ls --json`` prints it."""
        return {
            "id": self.id,
            "name": self.name,
            "amount": self.amount,
            "currency": self.currency,
            "interval": self.interval,
            "trial_days": self.trial_days,
            "tax_category": self.tax_category,
            "refund_on_cancel": self.refund_on_cancel,
        }


@dataclass(frozen=True)
class PlanCatalogue:
    plans: Mapping[str, Plan]
    path: str

    def get(self, plan_id: str) -> Plan:
        """The plan ``plan_id``.  Raises :class:`UnknownPlan`."""
        try:
            return self.plans[plan_id]
        except KeyError:
            raise UnknownPlan(plan_id) from None

    def __iter__(self) -> Any:
        return iter(self.plans.values())


def parse_catalogue(raw: Any, where: str) -> PlanCatalogue:
    """Validate a decoded catalogue.  Raises :class:`PlanCatalogueError` with ``where`` and the entry at fault."""
    if not isinstance(raw, dict) or not isinstance(raw.get("plans"), list) or not raw["plans"]:
        raise PlanCatalogueError(f"{where}: expected an object with a non-empty list 'plans'")
    plans: dict[str, Plan] = {}
    for index, entry in enumerate(raw["plans"]):
        ctx = f"{where}: plans[{index}]"
        if not isinstance(entry, dict):
            raise PlanCatalogueError(f"{ctx}: expected an object")
        ctx = f"{where}: plan {entry.get('id', index)!r}"
        missing = _FIELDS - entry.keys()
        unknown = entry.keys() - _FIELDS - _OPTIONAL.keys()
        if missing:
            raise PlanCatalogueError(f"{ctx}: missing {', '.join(sorted(missing))}")
        if unknown:
            raise PlanCatalogueError(f"{ctx}: unknown field(s) {', '.join(sorted(unknown))}")
        plan_id, name, amount = entry["id"], entry["name"], entry["amount"]
        if not isinstance(plan_id, str) or not _ID.match(plan_id):
            raise PlanCatalogueError(f"{ctx}: id must be 1-64 characters of a-z, 0-9, '-' and '_'")
        if plan_id in plans:
            raise PlanCatalogueError(f"{ctx}: duplicate id")
        if not isinstance(name, str) or not name.strip():
            raise PlanCatalogueError(f"{ctx}: name must be a non-empty string")
        try:
            code = currency(str(entry["currency"])).code
        except UnknownCurrency as exc:
            raise PlanCatalogueError(f"{ctx}: {exc}") from None
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise PlanCatalogueError(f"{ctx}: amount must be an integer of minor units")
        try:
            check_chargeable(amount, code)
        except AmountNotChargeable as exc:
            raise PlanCatalogueError(f"{ctx}: amount: {exc.message}") from None
        if entry["interval"] not in INTERVALS:
            raise PlanCatalogueError(f"{ctx}: interval must be one of {', '.join(INTERVALS)}")
        if entry["tax_category"] not in TAX_CATEGORIES:
            raise PlanCatalogueError(f"{ctx}: tax_category must be one of {', '.join(TAX_CATEGORIES)}")
        trial = entry["trial_days"]
        if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial <= MAX_TRIAL_DAYS:
            raise PlanCatalogueError(f"{ctx}: trial_days must be an integer from 0 to {MAX_TRIAL_DAYS}")
        refund_on_cancel = entry.get("refund_on_cancel", _OPTIONAL["refund_on_cancel"])
        if refund_on_cancel not in REFUND_ON_CANCEL:
            raise PlanCatalogueError(f"{ctx}: refund_on_cancel must be one of {', '.join(REFUND_ON_CANCEL)}")
        plans[plan_id] = Plan(
            plan_id, name.strip(), amount, code, entry["interval"], entry["tax_category"], trial, refund_on_cancel
        )
    return PlanCatalogue(plans, where)


def load_plans(path: str | Path | None = None) -> PlanCatalogue:
    """Read and validate the catalogue at ``path`` (default ``config/plans.json``).

    Raises :class:`PlanCatalogueError` when the file cannot be read or parsed, or any plan is invalid.
    """
    where = str(path or DEFAULT_PATH)
    try:
        raw = json.loads(Path(where).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanCatalogueError(f"{where}: cannot read the plans catalogue: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PlanCatalogueError(f"{where}: not valid JSON: {exc}") from None
    return parse_catalogue(raw, where)


@functools.cache
def default_plans() -> PlanCatalogue:
    """The shipped catalogue, loaded and validated once per process."""
    return load_plans()
