"""`otel-ai-cost doctor` against a good set-up and against each way it can be broken: exit 0 when all is well,
1 when anything fails, and the fix printed beside the failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from denying_proxy import DenyingProxy
from doctor_run import Doctor
from dynamodb_server import LoopbackDynamoDB

from otel_ai_cost.doctor import CHECK_NAMES
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

RunDoctor = Callable[..., Doctor]


def _fix_line(result: Doctor, name: str) -> str:
    """The table row of check `name` (one line: COLUMNS is wide), asserted to be a failure with its fix."""
    row = next(line for line in result.stdout.splitlines() if f" {name} " in line)
    assert "fail" in row.split()[1], row
    return row


def test_a_good_sqlite_set_up_exits_0_and_its_json_has_every_check(run_doctor: RunDoctor) -> None:
    table = run_doctor()
    assert table.returncode == 0, table.stdout + table.stderr
    assert "All checks passed" in table.stdout
    for name in CHECK_NAMES:
        assert f" {name} " in table.stdout

    report = run_doctor("--format", "json")
    assert report.returncode == 0
    data = report.json()
    assert data["ok"] is True and data["exit_code"] == 0
    assert [c["name"] for c in data["checks"]] == list(CHECK_NAMES)
    assert {c["status"] for c in data["checks"]} <= {"ok", "warn", "skip"}
    assert report.check("ledger")["status"] == "ok"
    assert report.check("write-test")["status"] == "skip"


def test_a_read_only_sqlite_file_fails_with_its_fix(run_doctor: RunDoctor, ledger_url: str) -> None:
    path = Path(ledger_url.removeprefix("sqlite://"))
    SQLiteStore(path).close()
    with _ReadOnly(path):
        result = run_doctor()
        report = run_doctor("--format", "json", "--write-test")
    assert result.returncode == 1
    row = _fix_line(result, "ledger.write")
    assert "attempt to write a readonly database" in row
    assert f"make {path} and its directory {path.parent} writable" in row
    assert report.returncode == 1
    assert report.check("ledger.write")["status"] == "fail"
    assert report.check("write-test")["status"] == "fail"  # the test call could not be written either
    assert report.check("ledger.query")["status"] == "ok"


def test_a_wrong_otlp_endpoint_fails_with_its_fix(run_doctor: RunDoctor, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as bound:  # bound, never listening: a connection to it is refused
        bound.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{bound.getsockname()[1]}"
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        result = run_doctor()
    assert result.returncode == 1
    for name, signal in (("exporter.traces", "traces"), ("exporter.metrics", "metrics")):
        row = _fix_line(result, name)
        assert f"{endpoint}/v1/{signal} is not reachable" in row
        assert "start the OpenTelemetry Collector there" in row and "OTEL_EXPORTER_OTLP_ENDPOINT" in row


def test_a_bad_price_file_fails_with_its_fix(
    run_doctor: RunDoctor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - {provider: openai, model: gpt-4o, prices: {input: -3, output: 10}}\n")
    monkeypatch.setenv("OTEL_AI_COST_PRICES_FILE", str(prices))
    result = run_doctor()
    assert result.returncode == 1
    row = _fix_line(result, "prices.override")
    assert f"otel-ai-cost prices check {prices}" in row
    checked = run_doctor("--format", "json").check("prices.override")
    assert checked["status"] == "fail" and checked["details"]  # the file's problems, as `prices check` lists them
    # The same file is refused by `prices check`: the doctor's fix sends the user to a command that explains it.
    explained = subprocess.run(
        [sys.executable, "-m", "otel_ai_cost", "prices", "check", str(prices)], capture_output=True, text=True
    )
    assert explained.returncode != 0


# -- DynamoDB -------------------------------------------------------------------------------------------------


@pytest.fixture
def table(server: LoopbackDynamoDB, dynamodb_url: Callable[[str, str], str]) -> Iterator[str]:
    """A new ledger table (`ledger init`'s schema and TTL) on the moto server: its URL."""
    url = dynamodb_url(f"ledger-{uuid.uuid4().hex[:8]}", server.endpoint_url)
    store = DynamoDBStore.from_url(url)
    store.ensure_table()
    store.close()
    yield url


def test_a_good_dynamodb_set_up_exits_0(run_doctor: RunDoctor, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", table)
    result = run_doctor("--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.check("ledger.schema")["status"] == "ok"
    assert "TTL on expires_at enabled" in result.check("ledger.schema")["summary"]
    assert result.check("ledger.write")["status"] == "ok"
    assert result.check("ledger.query")["status"] == "ok"


def test_a_missing_dynamodb_table_fails_with_its_fix(
    run_doctor: RunDoctor,
    server: LoopbackDynamoDB,
    dynamodb_url: Callable[[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = dynamodb_url("no-such-ledger", server.endpoint_url)
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", url)
    result = run_doctor()
    assert result.returncode == 1
    row = _fix_line(result, "ledger")
    assert "table no-such-ledger in region us-east-1" in row and "the table does not exist" in row
    assert f"otel-ai-cost ledger init --ledger '{url}'" in row
    report = run_doctor("--format", "json")
    assert [report.check(n)["status"] for n in ("ledger.schema", "ledger.write", "ledger.query")] == ["skip"] * 3


@pytest.mark.parametrize(
    ("denied", "check"),
    [("PutItem", "ledger.write"), ("UpdateItem", "ledger.write"), ("Query", "ledger.query")],
)
def test_dynamodb_permissions_denied_fail_naming_the_action(
    run_doctor: RunDoctor,
    server: LoopbackDynamoDB,
    table: str,
    dynamodb_url: Callable[[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
    denied: str,
    check: str,
) -> None:
    name = table.split("://", 1)[1].split("?", 1)[0]
    proxy = DenyingProxy(server.endpoint_url, {denied})
    try:
        monkeypatch.setenv("OTEL_AI_COST_LEDGER", dynamodb_url(name, proxy.endpoint_url))
        result = run_doctor()
    finally:
        proxy.stop()
    assert proxy.refusals, "the doctor never asked for the denied action"
    assert result.returncode == 1
    row = _fix_line(result, check)
    assert f"dynamodb:{denied} is not allowed" in row
    assert f"allow dynamodb:{denied} on arn:aws:dynamodb:us-east-1:ACCOUNT:table/{name}" in row
    assert " ok " in next(line for line in result.stdout.splitlines() if " ledger.schema " in line)


def test_the_check_names_are_those_the_json_reports_in_process(monkeypatch: pytest.MonkeyPatch, good_env: None) -> None:
    from otel_ai_cost.doctor import run_doctor

    assert [r.name for r in run_doctor()] == list(CHECK_NAMES)
    assert len(set(CHECK_NAMES)) == len(CHECK_NAMES)


class _ReadOnly:
    """The file made read-only for this process: mode 0444, and immutable when we are root (root writes through
    file modes; `chattr +i` stops it, as a read-only mount would)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.path.chmod(0o444)
        if os.geteuid() == 0:
            subprocess.run(["chattr", "+i", str(self.path)], check=True)
        assert not os.access(self.path, os.W_OK)

    def __exit__(self, *exc: object) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(self.path)], check=True)
        self.path.chmod(0o644)
