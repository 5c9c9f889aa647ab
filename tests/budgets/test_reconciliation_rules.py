"""alerts/reconciliation.rules.yml: its names come from the contract, its promtool unit test passes (the alerts fire
where they should and nowhere else), and changing the one threshold value moves the alert. A missing promtool FAILS
(install Debian's `prometheus`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from otel_ai_cost import contract
from otel_ai_cost.dashboards import reconciliation

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
RULES = ALERTS / "reconciliation.rules.yml"
UNIT_TEST = ALERTS / "tests" / "reconciliation_test.yml"


def promtool(*arguments: str, cwd: Path = ALERTS) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is not installed: apt-get install -y prometheus"
    return subprocess.run([tool, *arguments], cwd=cwd, capture_output=True, text=True, timeout=120)


def rules() -> dict[str, dict]:
    (group,) = yaml.safe_load(RULES.read_text())["groups"]
    return {rule.get("alert") or rule["record"]: rule for rule in group["rules"]}


def test_the_rules_use_contract_names_and_the_dashboards_threshold_series():
    text = RULES.read_text()
    used = set(re.findall(r"\b(ai_cost[_:][A-Za-z_:]+)\b", text))
    known = {m.name for m in contract.LEDGER_METRICS} | reconciliation.RECORDED_RULES
    assert used <= known, f"not in contract.py: {sorted(used - known)}"
    by_name = rules()
    assert by_name[reconciliation.THRESHOLD_RULE]["expr"] == "vector(0.05)"  # the default: 5%
    discrepancy, stale = by_name["AICostReconciliationDiscrepancy"], by_name["AICostReconciliationStale"]
    assert contract.LEDGER_RECONCILIATION_DISCREPANCY_RATIO.name in discrepancy["expr"]
    assert f"> {reconciliation.STALE_AFTER_S // 86400} * 86400" in stale["expr"]  # the dashboard's red step
    for rule in (discrepancy, stale):
        assert rule["labels"] == {"severity": "warning"} and rule["for"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"


def test_promtool_checks_the_rules_and_its_unit_test_passes():
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(UNIT_TEST))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    fired = {
        case["alertname"]
        for test in yaml.safe_load(UNIT_TEST.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == {"AICostReconciliationDiscrepancy", "AICostReconciliationStale"}


def test_changing_the_one_threshold_value_moves_the_alert(tmp_path: Path):
    """With vector(0.15): 12% no longer fires, -20% does, and the description names the new threshold (the
    documented way to change it)."""
    text = RULES.read_text()
    assert text.count("vector(0.05)") == 1
    (tmp_path / "reconciliation.rules.yml").write_text(text.replace("vector(0.05)", "vector(0.15)"))
    series = 'ai_cost_reconciliation_discrepancy_ratio{{job="ai-cost-ledger",instance="l:1",provider="{}"}}'
    labels = {"severity": "warning", "job": "ai-cost-ledger", "instance": "l:1", "provider": "anthropic"}
    annotations = {
        "summary": "Tracked and billed cost of anthropic differ by -20%",
        "description": "Over this month's reconciled days, (tracked - billed) / billed for anthropic is -20%: the "
        "ledger tracked less than the provider billed (threshold ±15%). `otel-ai-cost reconcile` names the days and "
        "the likely causes.",
        "runbook_url": "docs/operations.md#aicostreconciliationdiscrepancy",
    }
    expected = [{"exp_labels": labels, "exp_annotations": annotations}]
    case = {"eval_time": "70m", "alertname": "AICostReconciliationDiscrepancy", "exp_alerts": expected}
    inputs = [
        {"series": series.format("openai"), "values": "0.12x90"},
        {"series": series.format("anthropic"), "values": "-0.2x90"},
    ]
    test = {
        "rule_files": ["reconciliation.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": inputs, "alert_rule_test": [case]}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    tested = promtool("test", "rules", "test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
