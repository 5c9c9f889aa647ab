"""Template variables: environment, provider and model (label_values queries, multi-select with All = `.*`)."""

from __future__ import annotations

from typing import Any

from otel_ai_cost.dashboards import datasources
from otel_ai_cost.dashboards.promql import Metric

FILTER_VARIABLES = ("environment", "provider", "model")


def query_variable(name: str, label: str, metric: Metric, depends_on: tuple[str, ...]) -> dict[str, Any]:
    """`label_values(metric{filters of the variables it depends on}, label)`, refreshed with the time range."""
    matchers = [
        f'{metric.variable_labels[v]}=~"${v}"' for v in depends_on if metric.variable_labels[v] in metric.labels
    ]
    series = f"{metric.name}{{{', '.join(matchers)}}}" if matchers else metric.name
    query = f"label_values({series}, {label})"
    return {
        "type": "query",
        "name": name,
        "label": name.capitalize(),
        "datasource": datasources.prometheus(),
        "definition": query,
        "query": {"qryType": 1, "query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "regex": "",
        "hide": 0,
        "options": [],
    }


def filter_variables(metric: Metric) -> list[dict[str, Any]]:
    """Environment, provider and model, each filtered by the ones before it, read from `metric`'s labels."""
    out = []
    for i, name in enumerate(FILTER_VARIABLES):
        out.append(query_variable(name, metric.variable_labels[name], metric, FILTER_VARIABLES[:i]))
    return out


def textbox(name: str, label: str, default: str = "", description: str = "") -> dict[str, Any]:
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": description,
        "query": default,
        "current": {"selected": False, "text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
        "hide": 0,
    }


def variable_selector(variable: dict[str, Any]) -> str | None:
    """The series selector of a query variable (for checking it against a real Prometheus), else None."""
    if variable["type"] != "query":
        return None
    definition: str = variable["definition"]
    return definition[len("label_values(") :].rsplit(",", 1)[0]
