"""Grafana dashboards generated from the telemetry contract (`otel-ai-cost dashboards render -o dashboards/`).

Every metric name and label in a panel comes from `otel_ai_cost.contract`, so renaming a metric changes the
dashboards with it (and the drift test fails until the committed JSON is re-rendered).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from otel_ai_cost.dashboards import budgets, cost_overview, job_drilldown, reconciliation, tokens_latency
from otel_ai_cost.dashboards.budget_rules import DEFAULT as DEFAULT_BUDGET_RULES
from otel_ai_cost.dashboards.budget_rules import BudgetRuleNames
from otel_ai_cost.dashboards.variables import variable_selector

__all__ = ["BUILDERS", "DEFAULT_SUBSTITUTIONS", "Query", "all_queries", "build_all", "file_name", "render", "to_json"]

BUILDERS: Mapping[str, Callable[[BudgetRuleNames], dict[str, Any]]] = {
    cost_overview.UID: cost_overview.build,
    tokens_latency.UID: lambda _rules: tokens_latency.build(),
    budgets.UID: budgets.build,
    reconciliation.UID: lambda _rules: reconciliation.build(),
    job_drilldown.UID: lambda _rules: job_drilldown.build(),
}

# Grafana's built-in interval variables, as a test against a real Prometheus may replace them.
DEFAULT_SUBSTITUTIONS: Mapping[str, str] = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


class Query(NamedTuple):
    """One PromQL expression of a dashboard: `panel` is the panel title, or `variable <name>` for the series
    selector of a template variable's label_values query."""

    dashboard_uid: str
    panel: str
    expr: str


def build_all(rules: BudgetRuleNames = DEFAULT_BUDGET_RULES) -> dict[str, dict[str, Any]]:
    """Every dashboard, by uid."""
    return {uid: build(rules) for uid, build in BUILDERS.items()}


def file_name(uid: str) -> str:
    return f"{uid}.json"


def to_json(dashboard: Mapping[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render(output_dir: Path, rules: BudgetRuleNames = DEFAULT_BUDGET_RULES) -> list[Path]:
    """Writes one JSON file per dashboard; returns their paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for uid, dashboard in build_all(rules).items():
        path = output_dir / file_name(uid)
        path.write_text(to_json(dashboard), encoding="utf-8")
        written.append(path)
    return written


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def raw_queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title or `variable <name>`, PromQL) of a dashboard, template variables left in."""
    for variable in dashboard["templating"]["list"]:
        selector = variable_selector(variable)
        if selector is not None:
            yield f"variable {variable['name']}", selector
    for panel in iter_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") == "prometheus":
                yield panel["title"], target["expr"]


def substitute(expr: str, substitutions: Mapping[str, str] = DEFAULT_SUBSTITUTIONS) -> str:
    """Grafana variables replaced: built-in intervals by `substitutions`, every `$var` / `${var}` (dashboard
    variables, all multi-value regex filters) by `.*`."""
    for name in sorted(substitutions, key=len, reverse=True):
        expr = expr.replace(name, substitutions[name])
    return re.sub(r"\$\{?[A-Za-z_]\w*\}?", ".*", expr)


def all_queries(
    rules: BudgetRuleNames = DEFAULT_BUDGET_RULES,
    substitutions: Mapping[str, str] = DEFAULT_SUBSTITUTIONS,
) -> list[Query]:
    """Every Prometheus query of every dashboard, ready to run against a real Prometheus: template variables match
    anything (`.*`), `$__rate_interval` is 5m, `$__interval` 1m and `$__range` 1h (override with `substitutions`).
    Trace-store queries (the job drill-down's TraceQL) are not included."""
    return [
        Query(uid, title, substitute(expr, substitutions))
        for uid, dashboard in build_all(rules).items()
        for title, expr in raw_queries(dashboard)
    ]
