"""A real Alertmanager running alerts/alertmanager.yml posts to a real `otel-ai-cost budgets alert-log` process,
as in the compose stack: the shipped routes and the shipped `default-webhook` receiver (only its host:port moved to
the test's loopback port), the Slack and e-mail receivers emptied (no network), the timings shortened. An alert
fires and resolves through Alertmanager's API; the receiver's standard output shows both lines.

Fails (never skips) without the Alertmanager binary: CI installs Debian's prometheus-alertmanager."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_PATH = ROOT / "alerts" / "alertmanager.yml"
T = TypeVar("T")

LABELS = {
    "alertname": "AICostBudgetThreshold",
    "budget": "production/day",
    "environment": "production",
    "period": "day",
    "scope": "environment",
    "severity": "warning",
    "threshold": "80",
}
SUMMARY = "AI spend reached 80% of the daily production budget"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
            if result:
                return result
        except (requests.RequestException, OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def shortened_config(shipped: dict[str, Any], receiver_url: str) -> dict[str, Any]:
    """The shipped config with `default-webhook` posting to the test's receiver (same path), the other receivers
    emptied (their Slack and e-mail settings dropped with them), and notifications within a second."""
    config = yaml.safe_load(yaml.safe_dump(shipped))  # a deep copy
    target = urlsplit(receiver_url)
    for receiver in config["receivers"]:
        if receiver["name"] == "default-webhook":
            (webhook,) = receiver["webhook_configs"]
            webhook["url"] = urlunsplit(urlsplit(webhook["url"])._replace(netloc=target.netloc))
        else:
            for key in [key for key in receiver if key.endswith("_configs")]:
                del receiver[key]
    config["global"] = {"resolve_timeout": "5m"}
    config["route"].update(group_wait="1s", group_interval="1s")
    return config


class Process:
    def __init__(self, name: str, command: list[str], tmp: Path, ready_url: str) -> None:
        self.name = name
        self.stdout_path = tmp / f"{name}.out"
        self.stderr_path = tmp / f"{name}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err)
        try:
            wait_for(f"{name} at {ready_url}", lambda: self.process.poll() is None and requests.get(ready_url).ok)
        except BaseException:
            self.stop()
            raise

    def output(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def errors(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Process, Process]]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "Alertmanager is not installed (apt-get install -y prometheus-alertmanager)"
    started: list[Process] = []
    try:
        log_port = free_port()
        command = [sys.executable, "-m", "otel_ai_cost", "budgets", "alert-log", "--port", str(log_port)]
        alert_log = Process("alert-log", command, tmp_path, f"http://127.0.0.1:{log_port}/healthz")
        started.append(alert_log)
        config = tmp_path / "alertmanager.yml"
        shipped = yaml.safe_load(ALERTMANAGER_PATH.read_text(encoding="utf-8"))
        config.write_text(yaml.safe_dump(shortened_config(shipped, f"http://127.0.0.1:{log_port}")), encoding="utf-8")
        (tmp_path / "data").mkdir()
        am_port = free_port()
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        alertmanager = Process("alertmanager", command, tmp_path, f"http://127.0.0.1:{am_port}/-/ready")
        started.append(alertmanager)
        yield alert_log, alertmanager
    finally:
        for process in reversed(started):
            process.stop()


def post_alert(alertmanager: Process, ends_at: datetime) -> None:
    url = next(arg for arg in alertmanager.process.args if arg.startswith("--web.listen-address="))
    base = "http://" + url.split("=", 1)[1]
    now = datetime.now(timezone.utc)
    alert = {
        "labels": LABELS,
        "annotations": {"summary": SUMMARY, "runbook_url": "docs/operations.md#aicostbudgetthreshold"},
        "startsAt": (now - timedelta(minutes=5)).isoformat(),
        "endsAt": ends_at.isoformat(),
        "generatorURL": "http://prometheus:9090/graph",
    }
    answer = requests.post(f"{base}/api/v2/alerts", json=[alert], timeout=5)
    assert answer.status_code == 200, answer.text


def lines(alert_log: Process) -> list[dict[str, Any]]:
    return [json.loads(line) for line in alert_log.output().splitlines()]


def test_alertmanager_posts_firing_and_resolved_alerts_to_the_alert_log(running: tuple[Process, Process]) -> None:
    alert_log, alertmanager = running
    post_alert(alertmanager, ends_at=datetime.now(timezone.utc) + timedelta(hours=1))
    (firing,) = wait_for("the firing alert's line", lambda: lines(alert_log))
    post_alert(alertmanager, ends_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    _, resolved = wait_for("the resolved alert's line", lambda: (found := lines(alert_log))[1:] and found)

    expected = {key: LABELS[key] for key in ("alertname", "severity", "environment", "budget", "period", "threshold")}
    for line, status in ((firing, "firing"), (resolved, "resolved")):
        assert line["status"] == status and line["receiver"] == "default-webhook", line
        assert {key: line.get(key) for key in expected} == expected
        assert line["summary"] == SUMMARY and line["startsAt"] and line["fingerprint"]
    assert "endsAt" not in firing and resolved["endsAt"]
    assert resolved["fingerprint"] == firing["fingerprint"]
    assert len(lines(alert_log)) == 2, "one line per alert per notification"
    assert alert_log.stop() == 0, f"SIGTERM should end alert-log cleanly:\n{alert_log.errors()}"
    assert "alert-log: listening on http://127.0.0.1:" in alert_log.errors()
    assert '"error"' not in alert_log.errors(), "Alertmanager's payload was rejected"
