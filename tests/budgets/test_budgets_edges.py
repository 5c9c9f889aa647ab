"""Budgets files at their edges: bounded amounts (named by file, line and key, in `check` and `render` alike), and
which budgets file `check` and `render` read when run from anywhere."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_ai_cost.budgets.config import BudgetConfigError, parse_budgets
from otel_ai_cost.cli.budgets import EXIT_ERROR, budgets
from otel_ai_cost.contract import Env
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

GOOD = "budgets:\n  daily:\n    production: 100.00\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("budgets:\n  daily:\n    production: 1e400\n", "b.yaml:3: budgets.daily.production: must be at most"),
        ("budgets:\n  monthly:\n    cicd: 1e13\n", "b.yaml:3: budgets.monthly.cicd: must be at most"),
        ('budgets:\n  daily:\n    production: "1_000"\n', "b.yaml:3: budgets.daily.production: must be a number wi"),
        ("budgets:\n  daily:\n    production: 1e-30\n", "b.yaml:3: budgets.daily.production: must have at most 18"),
        (
            "budgets:\n  scoped:\n    - {environment: p, period: day, team: t, amount: 1e400}\n",
            "b.yaml:3: budgets.scoped[0].amount: must be at most",
        ),
        (
            "budgets:\n  daily: {p: 1}\n  alerts:\n    thresholds:\n      - {percent: 1e400, severity: warning}\n",
            "b.yaml:5: budgets.alerts.thresholds[0].percent: must be at most 1,000",
        ),
        (
            "budgets:\n  daily: {p: 1}\n  alerts:\n    channels:\n      - type: email\n        recipients: [a@b.c]\n"
            "        smtp: {host: h, from: a@b.c, port: 1e400}\n",
            "b.yaml:7: budgets.alerts.channels[0].smtp.port: expected",
        ),
    ],
)
def test_every_budget_number_is_bounded(text: str, expected: str) -> None:
    with pytest.raises(BudgetConfigError) as raised:
        parse_budgets(text, filename="b.yaml")
    assert str(raised.value).startswith(expected)


def test_every_problem_of_a_budgets_file_is_reported_at_once() -> None:
    text = (
        "budgets:\n"
        "  daily:\n"
        "    production: 1e400\n"
        "    cicd: lots\n"
        "  scoped:\n"
        "    - {environment: p, period: week, team: t, amount: 1}\n"
        "  alerts:\n"
        "    thresholds:\n"
        "      - {percent: 1e400, severity: warning}\n"
    )
    with pytest.raises(BudgetConfigError) as raised:
        parse_budgets(text, filename="b.yaml")
    assert str(raised.value).splitlines() == [
        "b.yaml:3: budgets.daily.production: must be at most 1,000,000,000, got '1e400'",
        "b.yaml:4: budgets.daily.cicd: expected a non-negative number, got 'lots'",
        "b.yaml:6: budgets.scoped[0].period: expected one of day, month, got 'week'",
        "b.yaml:9: budgets.alerts.thresholds[0].percent: must be at most 1,000, got '1e400'",
        "b.yaml: 4 problems",
    ]


def test_check_and_render_reject_a_budget_of_1e400_naming_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("budgets:\n  daily:\n    production: 1e400\n")
    ledger = f"sqlite://{tmp_path / 'usage.db'}"
    for args in (["check", "--budgets", str(path), "--ledger", ledger], ["render", str(path)]):
        result = CliRunner().invoke(budgets, args)
        assert result.exit_code == EXIT_ERROR, result.output
        assert f"{path}:3: budgets.daily.production: must be at most" in result.stderr
        assert "Traceback" not in result.output and result.stdout == ""


# -- item 21: which file --------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout with config/budgets.yaml, and a working directory deep inside it."""
    (tmp_path / "repo" / "config").mkdir(parents=True)
    (tmp_path / "repo" / "config" / "budgets.yaml").write_text(GOOD)
    (tmp_path / "repo" / "services" / "api").mkdir(parents=True)
    return tmp_path / "repo"


def test_render_finds_the_projects_budgets_from_a_subdirectory_and_says_so(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "services" / "api")
    result = CliRunner().invoke(budgets, ["render"])
    assert result.exit_code == 0, result.output
    assert "production/day" in result.stdout
    assert f"budgets: {project / 'config' / 'budgets.yaml'} (found above the working directory)" in result.stderr


def test_check_from_anywhere_uses_the_environment_variable(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(Env.BUDGETS, str(project / "config" / "budgets.yaml"))
    SQLiteStore(tmp_path / "usage.db").close()  # check only reads: the ledger must exist
    result = CliRunner().invoke(budgets, ["check", "--ledger", f"sqlite://{tmp_path / 'usage.db'}"])
    assert result.exit_code == 0, result.output
    assert "production/day" in result.stdout
    assert f"budgets: {project / 'config' / 'budgets.yaml'} (from {Env.BUDGETS})" in result.stderr


def test_the_option_wins_over_the_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = tmp_path / "chosen.yaml"
    chosen.write_text("budgets:\n  daily:\n    cicd: 5\n")
    monkeypatch.setenv(Env.BUDGETS, str(tmp_path / "absent.yaml"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(budgets, ["render", "--budgets", str(chosen)])
    assert result.exit_code == 0 and "cicd/day" in result.stdout, result.output
    assert f"budgets: {chosen} (from --budgets)" in result.stderr


def test_no_budgets_file_anywhere_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["render"], ["check", "--ledger", f"sqlite://{tmp_path / 'usage.db'}"]):
        result = CliRunner().invoke(budgets, args)
        assert result.exit_code == EXIT_ERROR
        assert "no budgets file: pass --budgets PATH, set OTEL_AI_COST_BUDGETS" in result.stderr
        assert f"no config/budgets.yaml in {tmp_path} or above" in result.stderr


def test_a_missing_file_named_by_the_environment_variable_says_where_the_name_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(Env.BUDGETS, str(tmp_path / "absent.yaml"))
    result = CliRunner().invoke(budgets, ["render"])
    assert result.exit_code == EXIT_ERROR
    assert f"{tmp_path / 'absent.yaml'}:0: (file): cannot read" in result.stderr
    assert f"(from {Env.BUDGETS})" in result.stderr


# -- a Prometheus answer that is no amount --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf", "1_0", "lots"])
def test_check_against_prometheus_refuses_a_value_that_is_no_amount(value: str, tmp_path: Path) -> None:
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [{"value": [0, value]}]}})

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "budgets.yaml"
    path.write_text(GOOD)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = CliRunner().invoke(budgets, ["check", "--budgets", str(path), "--prometheus", url])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == EXIT_ERROR, result.output
    assert f"{url} answered {value!r} for production/day, which is no amount" in result.stderr
