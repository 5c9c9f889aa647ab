"""The stack of the end-to-end test, started once for the module and stopped in teardown whatever happened:

- the ledger service (`otel-ai-cost ledger serve`, a subprocess on a SQLite file): exact period-to-date spend on
  its `/metrics`;
- an instrumented program (this process): the real `openai` and `anthropic` clients against the provider stand-in,
  instrumented by `otel_ai_cost.instrument()`, spans sent over OTLP/HTTP to the ledger, metrics exposed by the
  OpenTelemetry Prometheus exporter (which names them as the collector's `prometheus` exporter does);
- a real Prometheus scraping both every second and evaluating the rendered budget rules plus
  `alerts/operations.rules.yml` and `alerts/reconciliation.rules.yml` every second;
- a real Alertmanager running `alerts/alertmanager.yml` with every receiver turned into a webhook to an HTTP
  server of the test (routes, grouping and inhibition kept as shipped; only the timings are shortened).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import (
    DAILY_BUDGET,
    ENVIRONMENT,
    MONTHLY_BUDGET,
    AlertmanagerServer,
    InstrumentedApp,
    LedgerService,
    PrometheusServer,
    Stack,
    WebhookReceiver,
    free_port,
    require_binary,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "alerts"
OPERATIONS_RULES = ALERTS / "operations.rules.yml"
RECONCILIATION_RULES = ALERTS / "reconciliation.rules.yml"
ALERTMANAGER_CONFIG = ALERTS / "alertmanager.yml"

BUDGETS_YAML = f"""\
# The end-to-end test's budgets: {ENVIRONMENT} may spend ${DAILY_BUDGET} per UTC day, ${MONTHLY_BUDGET} per month.
budgets:
  daily:
    {ENVIRONMENT}: {DAILY_BUDGET}
  monthly:
    {ENVIRONMENT}: {MONTHLY_BUDGET}
"""

PROMETHEUS_CONFIG = REPO / "prometheus" / "prometheus.yml"
# The shipped scrape jobs, by name: the instrumented program stands for the collector's prometheus exporter (the
# program's metrics reach Prometheus through it in the shipped stack, under this job name).
LEDGER_JOB = "ai-cost-ledger"
APP_JOB = "otel-collector"
PROMETHEUS_JOB = "prometheus"
ALERTMANAGER_JOB = "alertmanager"

# Alertmanager timings for the test (the shipped ones wait tens of seconds to minutes before notifying).
GROUP_WAIT = "1s"
GROUP_INTERVAL = "2s"
REPEAT_INTERVAL = "1h"


def render_budget_rules(budgets: Path, out: Path) -> None:
    """`otel-ai-cost budgets render FILE -o OUT` (through `python -m otel_ai_cost`): the generator under test."""
    command = [sys.executable, "-m", "otel_ai_cost", "budgets", "render", str(budgets), "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"budgets render failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    assert out.is_file(), f"budgets render wrote nothing to {out}"


def check_rules(*files: Path) -> None:
    """promtool's own check of the rule files Prometheus is about to load (a clearer failure than a start error)."""
    promtool = require_binary("promtool")
    done = subprocess.run([promtool, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"promtool check rules failed:\n{done.stdout}\n{done.stderr}"


def prometheus_config(shipped: dict[str, Any], rule_files: list[Path], targets: dict[str, str]) -> dict[str, Any]:
    """The shipped Prometheus config with the test's timings (scrape and evaluate every second), rule files and
    targets: each shipped job whose name is in `targets` keeps its settings (honor_labels, metrics_path) and scrapes
    the test's address; jobs the test runs nothing for (the collector's own metrics) are left out, and so is the
    ledger's bearer token (the test's ledger service runs without one)."""
    jobs = []
    for job in shipped.get("scrape_configs", []):
        if job["job_name"] in targets:
            job = {key: value for key, value in job.items() if key not in ("authorization", "static_configs")}
            jobs.append({**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]})
    missing = set(targets) - {job["job_name"] for job in jobs}
    assert not missing, f"{PROMETHEUS_CONFIG.relative_to(REPO)} has no scrape job {sorted(missing)}"
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [targets[ALERTMANAGER_JOB]]}]}]},
        "storage": shipped.get("storage", {}),
        "scrape_configs": jobs,
    }


def _shorten_route(route: dict[str, Any], top: bool) -> None:
    """Short group_wait/group_interval on the root route and wherever a child route sets its own."""
    for key, value in (("group_wait", GROUP_WAIT), ("group_interval", GROUP_INTERVAL)):
        if top or key in route:
            route[key] = value
    if top or "repeat_interval" in route:
        route["repeat_interval"] = REPEAT_INTERVAL
    for child in route.get("routes", []) or []:
        _shorten_route(child, top=False)


def alertmanager_config(shipped: dict[str, Any], webhook_url: str) -> dict[str, Any]:
    """The shipped Alertmanager config with every receiver replaced by a webhook to the test (one path per receiver,
    so the route an alert took shows), and shorter timings. Routes, grouping and inhibition are kept as shipped."""
    config = yaml.safe_load(yaml.safe_dump(shipped))  # a deep copy
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [{"url": f"{webhook_url}/{receiver['name']}", "send_resolved": True}],
        }
        for receiver in config.get("receivers", [])
    ]
    # Channel settings (Slack URL, SMTP host, templates) belong to the replaced receivers: drop them, so that
    # missing secrets or template paths cannot stop the test's Alertmanager from starting.
    config["global"] = {"resolve_timeout": "5m"}
    config.pop("templates", None)
    _shorten_route(config["route"], top=True)
    return config


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def _module_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The neutral environment of tests/conftest.py for the whole module (its own fixture is per test, and the stack
    is set up before it): no CI or OTEL variables, the in-process ledger off, data under tmp."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("OTEL_", "CI", "GITHUB_", "GITLAB_")) or name == "ENVIRONMENT":
                patch.delenv(name)
        patch.setenv("OTEL_AI_COST_LEDGER", "none")
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("e2e-xdg")))
        yield


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, _module_environment: None) -> Iterator[Stack]:
    """Start everything (in dependency order), yield, stop everything in reverse order even on failure."""
    # Fail (not skip) at once when a binary is missing, before starting anything.
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    for shipped in (OPERATIONS_RULES, RECONCILIATION_RULES, ALERTMANAGER_CONFIG, PROMETHEUS_CONFIG):
        assert shipped.is_file(), f"{shipped.relative_to(REPO)} is missing: the end-to-end test loads it"

    tmp = tmp_path_factory.mktemp("e2e")
    budgets_file = tmp / "budgets.yaml"
    budgets_file.write_text(BUDGETS_YAML)
    rules_file = tmp / "budgets.rules.yml"
    render_budget_rules(budgets_file, rules_file)
    check_rules(rules_file, OPERATIONS_RULES, RECONCILIATION_RULES)

    stops: list[Any] = []
    try:
        webhook = WebhookReceiver()
        stops.append(webhook)
        ledger = LedgerService(tmp / "ledger.db", free_port(), tmp / "ledger.log")
        stops.append(ledger)
        app = InstrumentedApp(environment=ENVIRONMENT, ledger_url=ledger.url)
        stops.append(app)

        am_port = free_port()
        shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
        am_config = _write_yaml(tmp / "alertmanager.yml", alertmanager_config(shipped, webhook.url))
        (tmp / "alertmanager-data").mkdir()
        alertmanager = AlertmanagerServer(am_config, tmp / "alertmanager-data", am_port, tmp / "alertmanager.log")
        stops.append(alertmanager)

        prom_port = free_port()
        targets = {
            LEDGER_JOB: ledger.url.removeprefix("http://"),
            APP_JOB: f"127.0.0.1:{app.metrics_port}",
            PROMETHEUS_JOB: f"127.0.0.1:{prom_port}",
            ALERTMANAGER_JOB: f"127.0.0.1:{am_port}",
        }
        shipped_prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
        rule_files = [rules_file, OPERATIONS_RULES, RECONCILIATION_RULES]
        prom_config = prometheus_config(shipped_prometheus, rule_files, targets)
        prom_file = _write_yaml(tmp / "prometheus.yml", prom_config)
        (tmp / "prometheus-data").mkdir()
        prometheus = PrometheusServer(prom_file, tmp / "prometheus-data", prom_port, tmp / "prometheus.log")
        stops.append(prometheus)

        wait_for(
            "Prometheus to scrape the ledger, the instrumented program, itself and Alertmanager",
            lambda: (
                (health := prometheus.targets_up()) and len(health) == len(targets) and set(health.values()) == {"up"}
            ),
            timeout=15,
        )
        yield Stack(tmp, ledger, prometheus, alertmanager, webhook, app, budgets_file, rules_file)
    finally:
        errors = []
        for thing in reversed(stops):
            try:
                thing.stop()
            except Exception as error:  # stop the others whatever one did
                errors.append(f"{type(thing).__name__}: {error!r}")
        assert not errors, errors
