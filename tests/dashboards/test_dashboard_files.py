"""The committed dashboards are what the generator produces, and they are well formed for Grafana."""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from otel_ai_cost.cli.dashboards import dashboards as dashboards_command
from otel_ai_cost.dashboards import build_all, file_name, iter_panels, to_json
from otel_ai_cost.dashboards import datasources as ds
from otel_ai_cost.dashboards.dashboard import SCHEMA_VERSION
from otel_ai_cost.dashboards.layout import GRID_WIDTH
from otel_ai_cost.dashboards.variables import FILTER_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
GRAFANA_BUILTINS = {"__rate_interval", "__range", "__interval", "__value", "__data", "__field", "__series",
                    "__from", "__to", "__tags", "__all"}  # fmt: skip
EXPECTED_UIDS = {
    "ai-cost-overview",
    "ai-cost-tokens-latency",
    "ai-cost-budgets",
    "ai-cost-reconciliation",
    "ai-cost-job",
}
DASHBOARDS = build_all()


def test_the_committed_json_is_what_the_generator_produces() -> None:
    committed = {p.name for p in DASHBOARDS_DIR.glob("*.json")}
    assert committed == {file_name(uid) for uid in DASHBOARDS}, "run: otel-ai-cost dashboards render -o dashboards/"
    for uid, dashboard in DASHBOARDS.items():
        text = (DASHBOARDS_DIR / file_name(uid)).read_text(encoding="utf-8")
        assert text == to_json(dashboard), f"{file_name(uid)} drifted; run: otel-ai-cost dashboards render"


def test_render_command_writes_the_same_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(dashboards_command, ["render", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for uid in DASHBOARDS:
        assert (tmp_path / file_name(uid)).read_text() == (DASHBOARDS_DIR / file_name(uid)).read_text()


def test_fixed_uids_titles_and_schema() -> None:
    assert set(DASHBOARDS) == EXPECTED_UIDS
    titles = [d["title"] for d in DASHBOARDS.values()]
    assert len(set(titles)) == len(titles)
    for uid, dashboard in DASHBOARDS.items():
        assert dashboard["uid"] == uid and len(uid) <= 40
        assert dashboard["schemaVersion"] == SCHEMA_VERSION
        assert dashboard["timezone"] == "utc"
        assert "id" not in dashboard  # Grafana assigns database ids; a fixed one would clash


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_panels_have_unique_ids_and_do_not_overlap(uid: str) -> None:
    panels = list(iter_panels(DASHBOARDS[uid]["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] > 0 and pos["h"] > 0
        assert pos["x"] + pos["w"] <= GRID_WIDTH, panel["title"]
    for a, b in combinations(panels, 2):
        assert not overlap(a["gridPos"], b["gridPos"]), (a["title"], b["title"])


def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    )


def test_overlap_detection() -> None:
    assert overlap({"x": 0, "y": 0, "w": 12, "h": 4}, {"x": 11, "y": 3, "w": 4, "h": 4})
    assert not overlap({"x": 0, "y": 0, "w": 12, "h": 4}, {"x": 12, "y": 0, "w": 12, "h": 4})
    assert not overlap({"x": 0, "y": 0, "w": 24, "h": 1}, {"x": 0, "y": 1, "w": 8, "h": 4})


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


@pytest.mark.parametrize("uid", sorted(EXPECTED_UIDS))
def test_every_template_variable_used_is_defined(uid: str) -> None:
    dashboard = DASHBOARDS[uid]
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    assert set(FILTER_VARIABLES) <= defined, "environment, provider and model on every dashboard"
    used = set()
    for text in strings(dashboard["panels"]) + strings(dashboard["templating"]):
        used |= set(re.findall(r"\$\{?([A-Za-z_]\w*)", text))
    assert used - GRAFANA_BUILTINS <= defined, used - GRAFANA_BUILTINS - defined
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["query"]["query"].startswith("label_values(")
            assert variable["allValue"] == ".*" and variable["includeAll"] and variable["multi"]


def provisioned_datasources() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    assert data["apiVersion"] == 1
    return {d["uid"]: d for d in data["datasources"]}


def test_datasources_have_the_uids_the_dashboards_use() -> None:
    provisioned = provisioned_datasources()
    assert provisioned[ds.PROMETHEUS_UID]["type"] == ds.PROMETHEUS_TYPE
    assert provisioned[ds.PROMETHEUS_UID]["url"] == ds.PROMETHEUS_URL
    assert provisioned[ds.TRACES_UID]["type"] == ds.TRACES_TYPE
    assert provisioned[ds.TRACES_UID]["url"] == ds.TRACES_URL
    for dashboard in DASHBOARDS.values():
        for panel in iter_panels(dashboard["panels"]):
            refs = [panel.get("datasource"), *(t.get("datasource") for t in panel.get("targets", []))]
            for ref in filter(None, refs):
                assert ref["uid"] in provisioned, (dashboard["uid"], panel["title"], ref)
                assert provisioned[ref["uid"]]["type"] == ref["type"]
        for variable in dashboard["templating"]["list"]:
            if "datasource" in variable:
                assert variable["datasource"]["uid"] in provisioned


def test_exemplars_link_to_the_trace_store() -> None:
    prometheus = provisioned_datasources()[ds.PROMETHEUS_UID]
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": ds.EXEMPLAR_TRACE_ID_LABEL, "datasourceUid": ds.TRACES_UID} in destinations
    exemplar_panels = [
        p["title"]
        for d in DASHBOARDS.values()
        for p in iter_panels(d["panels"])
        if any(t.get("exemplar") for t in p.get("targets", []))
    ]
    assert any("exemplar" in title for title in exemplar_panels)


def test_no_unescaped_dollar_in_the_provisioning_file() -> None:
    """Grafana expands $VAR in provisioning files: Grafana's own ${...} variables must be written $$."""
    text = (PROVISIONING / "datasources" / "datasources.yml").read_text()
    assert not re.search(r"(?<!\$)\$(?!\$)\{?__", text)


def test_dashboard_provider_loads_the_dashboards_dir() -> None:
    data = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = data["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")


def test_job_drill_down_searches_traces_by_job_id() -> None:
    job = DASHBOARDS["ai-cost-job"]
    (search,) = [
        t for p in iter_panels(job["panels"]) for t in p.get("targets", []) if t["datasource"]["uid"] == ds.TRACES_UID
    ]
    assert search["tags"] == 'ai_cost.job.id="$job_id"'
    assert search["queryType"] == "search" and search["service"] == "$service"


def test_committed_files_are_valid_json_with_trailing_newline() -> None:
    for path in DASHBOARDS_DIR.glob("*.json"):
        text = path.read_text()
        assert text.endswith("\n")
        json.loads(text)


def test_the_reconciliation_dashboard_shows_the_billed_side_from_the_ledgers_series() -> None:
    """The billed placeholder is gone: billed vs tracked, the ratio with the alert's threshold, days by verdict and
    the last run's age are panels reading the ledger's reconciliation series."""
    panels = {p["title"]: p for p in iter_panels(DASHBOARDS["ai-cost-reconciliation"]["panels"])}
    assert not [p["title"] for p in panels.values() if p["type"] == "text"], "a placeholder is left"

    def exprs(title: str) -> list[str]:
        return [t["expr"] for t in panels[title]["targets"]]

    bars = panels["Billed vs tracked per provider, month to date"]
    assert bars["type"] == "barchart" and bars["options"]["xField"] == "provider"
    assert [("ai_cost_ledger_billed_USD" in e, "ai_cost_ledger_reconciled_tracked_USD" in e) for e in exprs(
        bars["title"])] == [(True, False), (False, True)]  # fmt: skip
    assert all('period="month"' in e for e in exprs(bars["title"]))
    renamed = bars["transformations"][1]["options"]["renameByName"]
    assert renamed == {"Value #A": "billed", "Value #B": "tracked"}

    (ratio_title,) = [title for title in panels if title.startswith("Discrepancy per provider")]
    ratio = panels[ratio_title]
    assert ratio["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert exprs(ratio_title) == [
        'ai_cost_reconciliation_discrepancy_ratio{provider=~"$provider"}',
        "ai_cost:reconciliation_discrepancy_threshold",
        "-ai_cost:reconciliation_discrepancy_threshold",
    ]
    assert exprs("Reconciled days this month by verdict") == [
        'sum by (provider, verdict) (ai_cost_reconciliation_days{provider=~"$provider"})'
    ]
    age = panels["Last reconciliation run"]
    assert exprs("Last reconciliation run") == ["time() - max(ai_cost_reconciliation_last_run_timestamp_seconds)"]
    assert [step["value"] for step in age["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 86400, 172800]
