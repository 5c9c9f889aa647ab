"""`otel-ai-cost doctor --write-test`: one test call recorded through the instrumentation's path, read back and
removed, so that a real environment's totals and reports are the same after it as before, and the doctor's own
environment holds nothing. SQLite and DynamoDB."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from doctor_run import Doctor
from dynamodb_server import LoopbackDynamoDB

from otel_ai_cost.contract import DOCTOR_ENVIRONMENT
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.open_store import open_store
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import UsageQuery

RunDoctor = Callable[..., Doctor]
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _production_records() -> list[LedgerRecord]:
    return [
        LedgerRecord(
            trace_id=uuid.uuid4().hex,
            span_id=uuid.uuid4().hex[:16],
            timestamp=NOW - timedelta(minutes=n),
            environment="production",
            service="receipts",
            provider="openai",
            request_model="gpt-4o-mini",
            response_model="gpt-4o-mini",
            operation="chat",
            input_tokens=100,
            output_tokens=20,
            amount=Decimal("0.000027"),
        )
        for n in range(3)
    ]


def _figures(url: str) -> tuple[object, ...]:
    """What a user reads of the production environment: the month's and the day's running totals, and the report."""
    store = open_store(url, create=False)
    try:
        totals = (
            store.totals("production", NOW.strftime("%Y-%m")),
            store.totals("production", NOW.strftime("%Y-%m-%d")),
        )
    finally:
        store.close()
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "otel_ai_cost",
            "report",
            "--ledger",
            url,
            "--by",
            "environment,provider,model",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return (*totals, report.stdout)


def _doctor_environment_left(url: str) -> tuple[list[LedgerRecord], int, Decimal]:
    store = open_store(url, create=False)
    try:
        records = list(store.query(UsageQuery(environment=DOCTOR_ENVIRONMENT)))
        totals = store.totals(DOCTOR_ENVIRONMENT, NOW.strftime("%Y-%m"))
    finally:
        store.close()
    return records, totals.calls, totals.amount


def _check_write_test(run_doctor: RunDoctor, url: str, monkeypatch: pytest.MonkeyPatch) -> Doctor:
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", url)
    store = open_store(url)
    store.write(_production_records())
    store.close()
    before = _figures(url)
    result = run_doctor("--write-test", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    checked = result.check("write-test")
    assert checked["status"] == "ok", checked
    assert "google_places place_details, $0.017, priced" in checked["summary"]
    assert "removed (1 record)" in checked["summary"]
    assert _figures(url) == before
    assert _doctor_environment_left(url) == ([], 0, Decimal(0))
    return result


def test_write_test_leaves_a_sqlite_ledger_as_it_was(
    run_doctor: RunDoctor, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _check_write_test(run_doctor, ledger_url, monkeypatch)
    conn = sqlite3.connect(ledger_url.removeprefix("sqlite://"))
    try:
        for table in ("records", "totals", "daily"):
            count = conn.execute(f"SELECT count(*) FROM {table} WHERE environment = ?", (DOCTOR_ENVIRONMENT,))
            assert count.fetchone()[0] == 0, table
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 3
    finally:
        conn.close()


@pytest.fixture
def table(server: LoopbackDynamoDB, dynamodb_url: Callable[[str, str], str]) -> Iterator[str]:
    url = dynamodb_url(f"ledger-{uuid.uuid4().hex[:8]}", server.endpoint_url)
    store = DynamoDBStore.from_url(url)
    store.ensure_table()
    store.close()
    yield url


def test_write_test_leaves_a_dynamodb_ledger_as_it_was(
    run_doctor: RunDoctor, table: str, server: LoopbackDynamoDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    _check_write_test(run_doctor, table, monkeypatch)
    name = table.split("://", 1)[1].split("?", 1)[0]
    items = server.client().scan(TableName=name)["Items"]
    assert not [item for item in items if DOCTOR_ENVIRONMENT in item["PK"]["S"] + item["SK"]["S"]]
    assert len([item for item in items if "#TRACE#" in item["PK"]["S"]]) == 3
    store = open_store(table, create=False)
    try:
        assert set(store.environments()) == {"production"}
    finally:
        store.close()


def test_write_test_fails_when_nothing_can_be_written(
    run_doctor: RunDoctor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the ledger's directory should be\n")
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{blocked}/usage.db")
    result = run_doctor("--write-test", "--format", "json")
    assert result.returncode == 1
    assert result.check("ledger")["status"] == "fail"
    assert result.check("write-test")["status"] == "fail"
