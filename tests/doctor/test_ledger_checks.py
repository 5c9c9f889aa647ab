"""The ledger checks' other answers, in-process: the ledger turned off, a SQLite file that is not a ledger, a
DynamoDB table without TTL; and the table never reads a fix as markup."""

from __future__ import annotations

import io
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from dynamodb_server import LoopbackDynamoDB

from otel_ai_cost.doctor import Result, Status, exit_code, run_doctor
from otel_ai_cost.doctor.checks import run_checks
from otel_ai_cost.doctor.render import print_table
from otel_ai_cost.ledger.dynamodb_schema import table_definition


def _by_name(results: list[Result]) -> dict[str, Result]:
    return {r.name: r for r in results}


@pytest.mark.usefixtures("good_env")
def test_the_ledger_turned_off_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", "none")
    results = _by_name(run_doctor())
    assert results["ledger"].status is Status.WARN
    assert "the in-process ledger is off" in results["ledger"].summary
    assert [results[n].status for n in ("ledger.schema", "ledger.write", "ledger.query")] == [Status.SKIP] * 3


@pytest.mark.usefixtures("good_env")
def test_a_sqlite_file_that_is_not_a_ledger_fails_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", f"sqlite://{other}")
    results = run_doctor()
    found = _by_name(results)
    assert found["ledger.schema"].status is Status.FAIL
    assert "not an otel-ai-cost ledger" in found["ledger.schema"].summary
    assert found["ledger.schema"].fix.startswith("point OTEL_AI_COST_LEDGER at another path")
    assert found["ledger.write"].status is Status.SKIP
    assert exit_code(results) == 1
    assert other.read_bytes() == before


@pytest.mark.usefixtures("good_env")
def test_a_dynamodb_table_without_ttl_is_a_warning(
    server: LoopbackDynamoDB, dynamodb_url: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    server.client().create_table(**table_definition(name))  # as `ledger init` makes it, but TTL never turned on
    url = dynamodb_url(name, server.endpoint_url)
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", url)
    schema = _by_name(run_doctor())["ledger.schema"]
    assert schema.status is Status.WARN
    assert "TTL is off" in schema.summary
    assert schema.fix == f"otel-ai-cost ledger init --ledger '{url}' turns TTL on for expires_at"


def test_a_check_that_raises_is_reported_as_its_own_failure() -> None:
    def broken() -> Result:
        raise RuntimeError("boom")

    results = run_checks([("broken", broken), ("fine", lambda: Result("fine", Status.OK, "fine"))])
    assert [(r.name, r.status) for r in results] == [("broken", Status.FAIL), ("fine", Status.OK)]
    assert "RuntimeError: boom" in results[0].summary


def test_the_table_prints_brackets_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per cell
    out = io.StringIO()
    fix = "pip install '/path/to/otel-ai-cost[all]'"
    print_table([Result("entry-points", Status.FAIL, "found [bold]nothing[/bold]", fix=fix)], file=out)
    assert fix in out.getvalue() and "[bold]nothing[/bold]" in out.getvalue()
    assert "1 failed: entry-points" in out.getvalue()
