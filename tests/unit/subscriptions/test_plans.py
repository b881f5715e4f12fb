"""The plans catalogue: the shipped one is valid; every kind of mistake is refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from engine.domain.plans import PlanCatalogueError, UnknownPlan, load_plans, parse_catalogue

GOOD = {"id": "p", "name": "P", "amount": 900, "currency": "EUR", "interval": "month", "tax_category": "standard"}


def test_the_shipped_catalogue() -> None:
    plans = load_plans()
    assert {"basic-monthly", "pro-monthly", "pro-yearly"} <= set(plans.plans)
    assert all(plans.get(p).trial_days == 0 for p in ("basic-monthly", "pro-monthly", "pro-yearly"))
    assert any(p.trial_days > 0 for p in plans)
    assert plans.get("pro-yearly").interval == "year"
    with pytest.raises(UnknownPlan):
        plans.get("nope")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": 10}, "at least"),
        ({"amount": 9.5}, "integer"),
        ({"currency": "xyz"}, "xyz"),
        ({"interval": "week"}, "interval"),
        ({"tax_category": "zero"}, "tax_category"),
        ({"trial_days": -1}, "trial_days"),
        ({"id": "Has Space"}, "id"),
        ({"colour": "red"}, "unknown field"),
        ({"refund_on_cancel": "always"}, "refund_on_cancel"),
    ],
)
def test_invalid_plans_are_refused_naming_the_plan(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanCatalogueError) as info:
        parse_catalogue({"plans": [{**GOOD, "trial_days": 0, **change}]}, "plans.json")
    assert message in str(info.value) and "plans.json" in str(info.value)


def test_missing_fields_duplicates_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(PlanCatalogueError, match="missing trial_days"):
        parse_catalogue({"plans": [GOOD]}, "x")
    with pytest.raises(PlanCatalogueError, match="duplicate"):
        parse_catalogue({"plans": [{**GOOD, "trial_days": 0}, {**GOOD, "trial_days": 0}]}, "x")
    broken = tmp_path / "plans.json"
    broken.write_text("{not json")
    with pytest.raises(PlanCatalogueError, match="not valid JSON"):
        load_plans(broken)
    with pytest.raises(PlanCatalogueError, match="cannot read"):
        load_plans(tmp_path / "absent.json")
    assert parse_catalogue({"plans": [{**GOOD, "trial_days": 0}]}, "x").get("p").currency == "eur"


def test_refund_on_cancel_is_optional_and_defaults_to_none() -> None:
    plain = parse_catalogue({"plans": [{**GOOD, "trial_days": 0}]}, "x").get("p")
    assert plain.refund_on_cancel == "none" and plain.as_dict()["refund_on_cancel"] == "none"
    prorated = parse_catalogue({"plans": [{**GOOD, "trial_days": 0, "refund_on_cancel": "prorated"}]}, "x").get("p")
    assert prorated.refund_on_cancel == "prorated"
    assert load_plans().get("pro-yearly-refundable").refund_on_cancel == "prorated"


def test_plans_ls_json() -> None:
    result = CliRunner().invoke(cli, ["plans", "ls", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert set(rows[0]) == {
        "id", "name", "amount", "currency", "interval", "trial_days", "tax_category", "refund_on_cancel",
    }  # fmt: skip
    assert {r["id"] for r in rows} >= {"basic-monthly", "pro-monthly", "pro-yearly"}
    table = CliRunner().invoke(cli, ["plans", "ls"])
    assert table.exit_code == 0 and "basic-monthly" in table.output
