"""The deploy files (alert rules, their unit tests, the scrape config, the Grafana dashboard) and the exposition.

promtool checks are skipped when promtool is missing and fail in CI; the structural checks always run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.observability.promtool import (
    DEPLOY,
    NAMED_FAMILIES,
    ROOT,
    assert_promtool_clean_metrics,
    engine_families,
    exposed_sample_names,
    run_promtool,
)

ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "payments-dashboard.json"
#: The alarms of docs/observability.md, by alert name.
EXPECTED_ALERTS = {
    "PaymentSuccessRateLow",
    "IngestLatencyP99High",
    "QueueDepthHigh",
    "DeadLetterQueueNotEmpty",
    "JobsStuck",
    "StripeCircuitOpen",
    "StripeLedgerMismatch",
    "StripeMoneyIncident",
    "PaymentsTargetDown",
    "SchedulerTaskStale",
}
PROMQL_NAME = re.compile(r"\bpayments_[a-z0-9_]+")


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p["targets"]]


def markdown_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return anchors


# -- alert rules ---------------------------------------------------------------------------------------------------
def test_alert_rules_pass_promtool_check_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_alert_rule_unit_tests_pass_promtool_test_rules() -> None:
    result = run_promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_seed_alarms_and_the_engine_alerts_are_all_there() -> None:
    assert {rule["alert"] for rule in alert_rules()} == EXPECTED_ALERTS


def test_every_alert_waits_has_a_severity_and_a_runbook_section_that_exists() -> None:
    anchors = markdown_anchors(ROOT / "docs" / "operations.md")
    for rule in alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no for:"
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor in anchors, f"{name}: runbook_url {page}#{anchor} not found"


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_does_not() -> None:
    cases = [case for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"] for case in test["alert_rule_test"]]
    for name in EXPECTED_ALERTS:
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case.get("exp_alerts") for case in mine), f"{name}: no test where it fires"
        assert any(not case.get("exp_alerts") for case in mine), f"{name}: no test where it stays quiet"


def test_prometheus_config_passes_promtool_check_config() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    assert jobs == {"payments-ingest", "payments-worker"}


def test_deploy_files_name_only_metrics_the_engine_exposes() -> None:
    known = exposed_sample_names()
    for path in (ALERTS, ALERTS_TEST, DASHBOARD):
        unknown = set(PROMQL_NAME.findall(path.read_text())) - known
        assert not unknown, f"{path.relative_to(ROOT)} names metrics the engine does not expose: {sorted(unknown)}"


# -- dashboard -----------------------------------------------------------------------------------------------------
def test_dashboard_takes_its_datasource_from_a_variable() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard_panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_charts_every_named_family() -> None:
    charted = " ".join(dashboard_exprs())
    for family in NAMED_FAMILIES:
        assert family in charted, f"{family} is on no dashboard panel"
    titles = " ".join(p["title"].lower() for p in dashboard_panels())
    for topic in ("throughput", "success rate", "p50", "p99", "queue depth", "stripe", "circuit", "currency", "stuck"):
        assert topic in titles, topic


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every panel query (Grafana's variables replaced by values), as recording rules."""
    replacements = {"$__rate_interval": "5m", "$__range": "1h", "$job": ".+"}
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        for variable, value in replacements.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# -- exposition ----------------------------------------------------------------------------------------------------
TOUCH_EVERY_FAMILY = """
import sys
from prometheus_client.metrics import MetricWrapperBase
from engine.runtime import metrics
for family in vars(metrics).values():
    if not isinstance(family, MetricWrapperBase):
        continue
    child = family.labels(*["x" for _ in family._labelnames]) if family._labelnames else family
    touch = {"counter": lambda c: c.inc(), "gauge": lambda c: c.set(1), "histogram": lambda c: c.observe(0.3)}
    touch[family._type](child)
sys.stdout.write(metrics.render_latest()[0].decode())
"""


@pytest.mark.parametrize("multiprocess", [True, False], ids=["multiprocess", "single-process"])
def test_every_engine_family_is_promtool_clean(tmp_path: Path, multiprocess: bool) -> None:
    """Each family of engine.runtime.metrics with a sample, rendered as the ingest and the workers render it."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiprocess:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    exposition = subprocess.run(
        [sys.executable, "-c", TOUCH_EVERY_FAMILY], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for family in engine_families():
        assert f"# TYPE {family} " in exposition, family
    assert_promtool_clean_metrics(exposition, "engine.runtime.metrics with every family touched")
