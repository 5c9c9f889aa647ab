"""The generated rule file: its shape, no drift from the committed copy, and the Prometheus tools' own checks
(promtool check/test rules, amtool check-config). A missing tool FAILS: install prometheus and
prometheus-alertmanager (Debian), as .ci/run does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from click.testing import CliRunner

from otel_ai_cost import contract
from otel_ai_cost.budgets.config import load_budgets, parse_budgets
from otel_ai_cost.budgets.rules import (
    ALERT_FORECAST,
    ALERT_NO_BUDGET,
    ALERT_THRESHOLD,
    RECORD_BUDGET,
    RECORD_FORECAST,
    RECORD_RATIO,
    RECORD_SPEND,
    render_rules,
)
from otel_ai_cost.cli.budgets import budgets

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
SHIPPED = ROOT / "config" / "budgets.yaml"
GENERATED = ALERTS / "budgets.rules.yml"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: apt-get install -y prometheus prometheus-alertmanager"
    return path


def run(*command: str) -> str:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_the_committed_rules_are_what_render_produces():
    expected = render_rules(load_budgets(SHIPPED), source="config/budgets.yaml")
    assert GENERATED.read_text(encoding="utf-8") == expected, (
        "alerts/budgets.rules.yml drifted: run "
        "`otel-ai-cost budgets render config/budgets.yaml -o alerts/budgets.rules.yml`"
    )


def test_render_command_writes_the_file(tmp_path: Path):
    out = tmp_path / "rules.yml"
    result = CliRunner().invoke(budgets, ["render", str(SHIPPED), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().split("\n", 1)[1] == GENERATED.read_text().split("\n", 1)[1]  # header names the source


def test_render_rejects_a_bad_file_with_exit_2(tmp_path: Path):
    bad = tmp_path / "b.yaml"
    bad.write_text("budgets:\n  dayly: {x: 1}\n")
    result = CliRunner().invoke(budgets, ["render", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: budgets.dayly: unknown key (did you mean 'daily'?)" in result.output


def test_shape_of_the_rules():
    config = parse_budgets(
        "budgets:\n  daily: {e2e: 1.00}\n  monthly: {e2e: 10}\n"
        "  scoped:\n    - {environment: e2e, period: day, provider: openai, amount: 0.5}\n"
    )
    rules = yaml.safe_load(render_rules(config))["groups"]
    assert len(rules) == 1  # one group: budget -> spend -> alert in the same evaluation
    by_name: dict[str, list[dict]] = {}
    for rule in rules[0]["rules"]:
        by_name.setdefault(rule.get("record") or rule["alert"], []).append(rule)
    assert [r["expr"] for r in by_name[RECORD_BUDGET]] == ["vector(1)", "vector(10)", "vector(0.5)"]
    spend = [r["expr"] for r in by_name[RECORD_SPEND]]
    assert spend == [
        f'sum({contract.LEDGER_SPEND.name}{{environment="e2e",period="day"}})',
        f'sum({contract.LEDGER_SPEND.name}{{environment="e2e",period="month"}})',
        f'sum({contract.LEDGER_SPEND_BY_MODEL.name}{{environment="e2e",period="day",provider="openai"}})',
    ]
    assert len(by_name[RECORD_RATIO]) == 1 and len(by_name[RECORD_FORECAST]) == 1
    assert "predict_linear" in by_name[RECORD_FORECAST][0]["expr"]
    thresholds = by_name[ALERT_THRESHOLD]
    assert len(thresholds) == 9
    first = thresholds[:3]
    assert [r["expr"] for r in first] == [
        f'{RECORD_SPEND}{{budget="e2e/day"}} >= 0.8',
        f'{RECORD_SPEND}{{budget="e2e/day"}} >= 0.95',
        f'{RECORD_SPEND}{{budget="e2e/day"}} >= 1',
    ]
    assert [(r["labels"]["severity"], r["labels"]["threshold"]) for r in first] == [
        ("warning", "80"),
        ("critical", "95"),
        ("exceeded", "100"),
    ]
    for rule in thresholds + by_name[ALERT_FORECAST] + by_name[ALERT_NO_BUDGET]:
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"
    assert len(by_name[ALERT_FORECAST]) == 1 and by_name[ALERT_FORECAST][0]["labels"]["budget"] == "e2e/month"
    assert "unless on(environment) ai_cost:budget_USD" in by_name[ALERT_NO_BUDGET][0]["expr"]


def test_hand_written_rules_use_only_contract_metric_names():
    known = {m.prometheus_name for m in contract.METRICS} | {m.name for m in contract.LEDGER_METRICS}
    text = (ALERTS / "operations.rules.yml").read_text()
    used = set(re.findall(r"\b(ai_cost_[A-Za-z_]+|gen_ai_[a-z_]+_(?:seconds|total)\w*)\b", text))
    labels = {a.replace(".", "_") for a in contract.METRIC_LABELS_DEFAULT} | {
        "ai_cost_pricing_status",
        "ai_cost_outcome",
    }
    unknown = {name for name in used if name not in known and name not in labels}
    assert not unknown, f"not in contract.py: {sorted(unknown)}"
    assert contract.Cost.PRICING_STATUS.replace(".", "_") == "ai_cost_pricing_status"
    assert contract.OUTCOME_LABEL.replace(".", "_") == "ai_cost_outcome"


def test_promtool_checks_every_rule_file():
    run(tool("promtool"), "check", "rules", *sorted(str(p) for p in ALERTS.glob("*.rules.yml")))


def test_promtool_unit_tests_pass():
    tests = sorted(str(p) for p in (ALERTS / "tests").glob("*.yml"))
    assert len(tests) >= 2
    output = run(tool("promtool"), "test", "rules", *tests)
    assert "FAILED" not in output


def test_every_alert_has_a_promtool_unit_test():
    alerts = set()
    for path in ALERTS.glob("*.rules.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            alerts |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    tested = set()
    for path in (ALERTS / "tests").glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            tested |= {case["alertname"] for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts - tested == set()


def test_amtool_accepts_the_alertmanager_config():
    config = str(ALERTS / "alertmanager.yml")
    run(tool("amtool"), "check-config", config)
    routed = run(
        tool("amtool"), "config", "routes", "test", f"--config.file={config}",
        "alertname=AICostBudgetThreshold", "severity=critical", "environment=production", "budget=production/day",
    )  # fmt: skip
    assert "default-webhook" in routed and "production-critical" in routed
    warning = run(tool("amtool"), "config", "routes", "test", f"--config.file={config}", "severity=warning")
    assert "default-webhook" in warning and "warning" in warning.replace("default-webhook", "")
