"""The dashboard envelope: uid, title, time settings, variables, links to the other dashboards."""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 41  # Grafana 12.0 (Grafana 11.x loads it unchanged)
TAG = "otel-ai-cost"


def dashboard(
    uid: str,
    title: str,
    panels: list[dict[str, Any]],
    variables: list[dict[str, Any]],
    *,
    description: str,
    time_from: str = "now-24h",
) -> dict[str, Any]:
    """A complete dashboard. Times are UTC, matching the ledger's calendar days and the budget rules."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "timezone": "utc",
        "weekStart": "",
        "fiscalYearStartMonth": 0,
        "editable": True,
        "graphTooltip": 1,
        "liveNow": False,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "otel-ai-cost",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables},
        "panels": panels,
    }
