"""Every PromQL expression of the dashboards parses (promtool) and names only metrics and labels of the contract."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from otel_ai_cost import contract
from otel_ai_cost.dashboards import (
    DEFAULT_BUDGET_RULES,
    all_queries,
    build_all,
    raw_queries,
    reconciliation,
    substitute,
)
from otel_ai_cost.dashboards.promql import COLLECTOR_LABELS, prom_label

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "inf",
     "nan", "le"}
)  # fmt: skip


def known_metrics() -> dict[str, frozenset[str] | None]:
    """Metric name -> the labels it may carry (None: not known here, e.g. budget and reconciliation recording
    rules)."""
    known: dict[str, frozenset[str] | None] = {}
    for spec in contract.METRICS:
        labels = frozenset(prom_label(a) for a in (*spec.labels, *spec.extra_labels)) | COLLECTOR_LABELS
        known[spec.prometheus_name] = labels
        if spec.instrument == "histogram":
            for suffix in HISTOGRAM_SUFFIXES:
                known[spec.prometheus_name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    for metric in contract.LEDGER_METRICS:
        known[metric.name] = frozenset(metric.labels)
    for name in DEFAULT_BUDGET_RULES.names() | reconciliation.RECORDED_RULES:
        known[name] = None
    return known


def metric_names(expr: str) -> set[str]:
    """Identifiers of an expression that name metrics: not functions, keywords, label names or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def selectors(expr: str) -> list[tuple[str, list[str]]]:
    """(metric, labels matched) of each `metric{...}` selector."""
    found = []
    for match in re.finditer(r"([A-Za-z_:][\w:]*)\{([^}]*)\}", expr):
        labels = [m.group(1) for m in re.finditer(r'([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*"', match.group(2))]
        found.append((match.group(1), labels))
    return found


QUERIES = all_queries()
COLLECTOR_CONFIG = Path(__file__).resolve().parents[2] / "collector" / "config.yaml"


def test_the_collector_adds_the_labels_the_dashboards_assume() -> None:
    """The environment filter on metrics whose contract labels lack it relies on the collector's transform."""
    statements = [
        statement
        for group in yaml.safe_load(COLLECTOR_CONFIG.read_text())["processors"]["transform/metric_labels"][
            "metric_statements"
        ]
        for statement in group["statements"]
    ]
    for label in COLLECTOR_LABELS:
        attribute = contract.Resource.DEPLOYMENT_ENVIRONMENT_NAME
        assert prom_label(attribute) == label
        assert any(
            s.startswith(f'set(datapoint.attributes["{attribute}"], resource.attributes["{attribute}"])')
            for s in statements
        ), statements


def test_there_are_queries_for_every_dashboard() -> None:
    assert {q.dashboard_uid for q in QUERIES} == set(build_all())
    assert len(QUERIES) > 40


def test_the_name_parser_finds_metrics_and_only_metrics() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, a) (rate(foo_bucket{x="y", le!="1"}[5m]))) / on (a) group_left (b) '
        'bar or vector(0) * scalar(days_in_month() - 1) + ai_cost:budget_usd{period="day"} and on() baz offset 1h'
    )
    assert metric_names(expr) == {"foo_bucket", "bar", "ai_cost:budget_usd", "baz"}
    assert selectors('a{x="1", y=~"2"} + b{z!="3"}') == [("a", ["x", "y"]), ("b", ["z"])]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: f"{q.dashboard_uid}:{q.panel}")
def test_every_metric_and_label_comes_from_the_contract(query) -> None:
    known = known_metrics()
    names = metric_names(query.expr)
    assert names, f"no metric in {query.expr}"
    unknown = names - set(known)
    assert not unknown, f"{query.panel}: metrics not in the contract: {unknown} in {query.expr}"
    for metric, labels in selectors(query.expr):
        allowed = known[metric]
        if allowed is not None:
            assert set(labels) <= allowed, f"{metric} has no label(s) {set(labels) - allowed}: {query.expr}"


def test_substitution_leaves_no_grafana_variable() -> None:
    for query in QUERIES:
        assert "$" not in query.expr, query
    assert substitute('x{a=~"$environment", b=~"${model}"}[$__rate_interval]') == 'x{a=~".*", b=~".*"}[5m]'


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is required (Debian package `prometheus`): the dashboards' PromQL cannot be checked")
    return path


def check_rules(tmp_path: Path, exprs: list[str]) -> subprocess.CompletedProcess[str]:
    rules = [{"record": f"dashboard:check_{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    return subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def test_every_expression_parses_with_promtool(tmp_path: Path) -> None:
    result = check_rules(tmp_path, [q.expr for q in QUERIES])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(QUERIES)} rules found" in result.stdout


def test_promtool_check_rejects_a_broken_expression(tmp_path: Path) -> None:
    result = check_rules(tmp_path, ["sum by (a) (rate(x[5m])"])
    assert result.returncode != 0


def test_raw_expressions_use_grafana_intervals() -> None:
    """Counters are rated over $__rate_interval (never a fixed window shorter than two scrapes)."""
    for dashboard in build_all().values():
        for title, expr in raw_queries(dashboard):
            assert "[5m]" not in expr, (title, expr)


def test_budget_rules_the_dashboards_read_are_recorded_in_the_committed_rule_file() -> None:
    rule_file = Path(__file__).resolve().parents[2] / "alerts" / "budgets.rules.yml"
    recorded = {
        rule["record"] for group in yaml.safe_load(rule_file.read_text())["groups"] for rule in group["rules"]
        if "record" in rule
    }  # fmt: skip
    used = {name for q in QUERIES for name in metric_names(q.expr)} & DEFAULT_BUDGET_RULES.names()
    assert used and used <= recorded, used - recorded


def test_reconciliation_rules_the_dashboard_reads_are_recorded_in_the_committed_rule_file() -> None:
    rule_file = Path(__file__).resolve().parents[2] / "alerts" / "reconciliation.rules.yml"
    recorded = {
        rule["record"] for group in yaml.safe_load(rule_file.read_text())["groups"] for rule in group["rules"]
        if "record" in rule
    }  # fmt: skip
    read = {name for q in QUERIES if q.dashboard_uid == reconciliation.UID for name in metric_names(q.expr)}
    rules = read - {m.name for m in contract.LEDGER_METRICS} - {m.prometheus_name for m in contract.METRICS}
    assert rules == reconciliation.RECORDED_RULES and rules <= recorded, (rules, recorded)
