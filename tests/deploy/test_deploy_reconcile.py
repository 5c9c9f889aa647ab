"""The reconciliation's deployment shapes: the compose service, the GitHub Actions workflow (its script run for
real), the systemd timer, and the docs' lists of verdicts, causes and sources, checked against the code."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.reconcile.result import Cause, Verdict
from otel_ai_cost.reconcile.sources import SOURCES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "deploy" / "github" / "reconcile.yml"
SYSTEMD = ROOT / "deploy" / "systemd"
DOC = (ROOT / "docs" / "reconciliation.md").read_text(encoding="utf-8")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_ai_cost", *args], capture_output=True, text=True, timeout=120)


def test_the_compose_service_runs_a_real_command_against_the_team_ledger_and_the_stand_in() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    service = services["reconcile"]
    entrypoint = service["entrypoint"]
    assert entrypoint[:2] == ["otel-ai-cost", "reconcile"]
    parsed = cli(*entrypoint[1:], "--help")  # unknown options before --help would fail here
    assert parsed.returncode == 0, parsed.stderr
    env = service["environment"]
    assert env["OTEL_AI_COST_LEDGER"] == services["ledger"]["environment"]["OTEL_AI_COST_LEDGER"]
    stand_in_port = services["stand-in"]["entrypoint"][-1]
    assert env["OPENAI_BASE_URL"] == f"http://stand-in:{stand_in_port}/v1"
    assert env["ANTHROPIC_BASE_URL"] == f"http://stand-in:{stand_in_port}"
    assert "--heartbeat-file" in entrypoint and entrypoint[entrypoint.index("--heartbeat-file") + 1] in str(
        service["healthcheck"]["test"]
    )


def _record(day: date, amount: str, n: int) -> LedgerRecord:
    return LedgerRecord(trace_id=f"{n:032x}", span_id=f"{n:016x}", timestamp=datetime(day.year, day.month, day.day, 9,
                        tzinfo=timezone.utc), environment="production", service="svc", provider="x_ai",
                        request_model="grok-4", amount=Decimal(amount))  # fmt: skip


@pytest.mark.parametrize(("billed", "status"), [("1.00", 0), ("9.00", 1)])
def test_the_github_workflow_script_runs(tmp_path: Path, billed: str, status: int) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["schedule"][0]["cron"].count(" ") == 4  # `on:` reads as True in YAML 1.1
    steps = workflow["jobs"]["reconcile"]["steps"]
    script = next(step["run"] for step in steps if step.get("name") == "reconcile")
    ledger = tmp_path / "usage.db"
    with SQLiteStore(ledger) as store:
        store.write([_record(date(2026, 11, 2), "1.00", 1)])
    assert cli("record", "--provider", "x_ai", "--amount", billed, "--date", "2026-11-02", "--ledger",
               f"sqlite://{ledger}").returncode == 0  # fmt: skip
    bindir = tmp_path / "bin"
    bindir.mkdir()
    launcher = bindir / "otel-ai-cost"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m otel_ai_cost "$@"\n')
    launcher.chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "OTEL_AI_COST_LEDGER": f"sqlite://{ledger}",
           "GITHUB_STEP_SUMMARY": str(summary), "RECONCILE_FROM": "2026-11-02", "RECONCILE_TO": "2026-11-02",
           "OPENAI_ADMIN_KEY": "", "ANTHROPIC_ADMIN_KEY": ""}  # fmt: skip
    done = subprocess.run([shutil.which("bash") or "bash", "-e", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == status, done.stdout + done.stderr
    assert (tmp_path / "reconciliation.html").read_text().startswith("<!doctype html>")
    text = summary.read_text()
    assert text.startswith("```") and "2026-11-02" in text and ("match" if status == 0 else "under") in text


def test_the_systemd_timer_and_service() -> None:
    timer = (SYSTEMD / "otel-ai-cost-reconcile.timer").read_text()
    calendar = re.search(r"^OnCalendar=(.+)$", timer, re.M).group(1)  # type: ignore[union-attr]
    analyzed = subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True, text=True)
    assert analyzed.returncode == 0 and "Next elapse" in analyzed.stdout, analyzed.stderr
    service = (SYSTEMD / "otel-ai-cost-reconcile.service").read_text()
    command = shlex.split(re.search(r"^ExecStart=(.+)$", service, re.M).group(1))  # type: ignore[union-attr]
    assert command[0].endswith("/otel-ai-cost") and command[1] == "reconcile"
    assert cli(*command[1:], "--help").returncode == 0


def test_the_docs_name_every_verdict_cause_and_source() -> None:
    for verdict in Verdict:
        assert f"| `{verdict.value}` |" in DOC, verdict
    for cause in Cause:
        assert f"| `{cause.value}` |" in DOC, cause
    for spec in SOURCES:
        module = spec.module.rsplit(".", 1)[1]
        assert f"| `{spec.name}` | `{module}` |" in DOC, spec.name
        for variable in spec.variables:
            assert variable.removesuffix("_FILE") in DOC, variable
