"""Panel and target builders: small functions returning Grafana panel JSON (schema of Grafana 11/12)."""

from __future__ import annotations

from typing import Any

from otel_ai_cost.dashboards import datasources

REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def target(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    exemplar: bool = False,
    table: bool = False,
) -> dict[str, Any]:
    """A Prometheus query (refId is set by the panel)."""
    return {
        "datasource": datasources.prometheus(),
        "editorMode": "code",
        "expr": expr,
        "exemplar": exemplar,
        "format": "table" if table else "time_series",
        "instant": instant,
        "range": not instant,
        "legendFormat": legend,
    }


def _panel(
    kind: str,
    title: str,
    targets: list[dict[str, Any]],
    *,
    description: str = "",
    unit: str = "short",
    decimals: int | None = None,
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    links: list[dict[str, Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    datasource: dict[str, Any] | None = None,
) -> dict[str, Any]:
    for i, t in enumerate(targets):
        t["refId"] = REF_IDS[i]
    steps = thresholds or [(None, "green")]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]},
        "color": {"mode": "palette-classic" if kind in ("timeseries", "barchart") else "thresholds"},
        "custom": custom or {},
        "links": links or [],
        "mappings": [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource or datasources.prometheus(),
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }


def timeseries(
    title: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    description: str = "",
    stack: bool = False,
    bars: bool = False,
) -> dict[str, Any]:
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 40 if stack or bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "axisPlacement": "auto",
    }
    options = {
        "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["mean", "lastNotNull"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return _panel("timeseries", title, targets, unit=unit, description=description, custom=custom, options=options)


def stat(
    title: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    description: str = "",
    decimals: int | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> dict[str, Any]:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "textMode": "value_and_name",
        "wideLayout": True,
        "showPercentChange": False,
    }
    return _panel(
        "stat", title, targets, unit=unit, description=description, decimals=decimals, options=options,
        thresholds=thresholds,
    )  # fmt: skip


def bargauge(
    title: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    max_value: float | None = None,
) -> dict[str, Any]:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
        "minVizHeight": 16,
        "maxVizHeight": 300,
    }
    panel = _panel(
        "bargauge", title, targets, unit=unit, description=description, options=options, thresholds=thresholds
    )
    panel["fieldConfig"]["defaults"]["min"] = 0
    if max_value is not None:
        panel["fieldConfig"]["defaults"]["max"] = max_value
    return panel


def barchart(
    title: str,
    targets: list[dict[str, Any]],
    *,
    x_field: str,
    unit: str = "short",
    description: str = "",
    transformations: list[dict[str, Any]] | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Grouped bars of instant table queries: one group per `x_field` value (e.g. provider), one bar per value field
    (rename them with an `organize` transformation)."""
    custom = {"lineWidth": 1, "fillOpacity": 80, "gradientMode": "none", "axisPlacement": "auto", "axisSoftMin": 0}
    options = {
        "orientation": "auto",
        "xField": x_field,
        "showValue": "auto",
        "stacking": "none",
        "groupWidth": 0.7,
        "barWidth": 0.9,
        "xTickLabelRotation": 0,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "none"},
    }
    panel = _panel(
        "barchart", title, targets, unit=unit, description=description, custom=custom, options=options,
        overrides=overrides,
    )  # fmt: skip
    panel["transformations"] = transformations or []
    return panel


def table(
    title: str,
    targets: list[dict[str, Any]],
    *,
    unit: str = "short",
    description: str = "",
    overrides: list[dict[str, Any]] | None = None,
    datasource: dict[str, Any] | None = None,
    transformations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    panel = _panel(
        "table", title, targets, unit=unit, description=description, options=options, overrides=overrides,
        datasource=datasource,
    )  # fmt: skip
    panel["transformations"] = transformations or []
    return panel


def text(title: str, markdown: str) -> dict[str, Any]:
    """A markdown panel (no query)."""
    return {
        "type": "text",
        "title": title,
        "description": "",
        "options": {"mode": "markdown", "content": markdown, "code": {"language": "plaintext"}},
    }


def link(title: str, url: str, *, new_tab: bool = True) -> dict[str, Any]:
    return {"title": title, "url": url, "targetBlank": new_tab}
