"""`budgets check` against a real SQLite ledger and a small fake Prometheus HTTP API; notifications to a real
local HTTP server (Slack / webhook) and a minimal local SMTP server."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from otel_ai_cost.cli.budgets import EXIT_ERROR, EXIT_EXCEEDED, budgets
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

NOW = datetime.now(timezone.utc).replace(microsecond=0)
BUDGETS = """\
budgets:
  daily: {cicd: 10.00, production: 100}
  monthly: {cicd: 200}
  scoped:
    - {environment: cicd, period: day, team: platform, amount: 4}
    - {environment: cicd, period: day, provider: anthropic, amount: 1}
"""


def record(n: int, environment: str, amount: str, **extra: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "trace_id": f"{n:032x}", "span_id": f"{n:016x}", "timestamp": NOW, "environment": environment,
        "service": "svc", "provider": "openai", "request_model": "gpt-4o-mini", "operation": "chat",
        "input_tokens": 10, "output_tokens": 5, "amount": Decimal(amount),
    }  # fmt: skip
    values.update(extra)
    return LedgerRecord(**values)


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    store = SQLiteStore(tmp_path / "usage.db")
    store.write(
        [
            record(1, "cicd", "6.00", team="platform"),  # platform 6 of 4: exceeded
            record(2, "cicd", "3.50"),  # cicd day: 9.50 of 10 = 95 %: critical
            record(3, "production", "1.25"),
            record(4, "cicd", "0", provider="anthropic", request_model="claude"),
        ]
    )
    store.close()
    return f"sqlite://{tmp_path / 'usage.db'}"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(BUDGETS)
    return path


def table_rows(output: str) -> dict[str, list[str]]:
    """The budget table's rows (`reports.tables`: cells between `│`), by budget."""
    rows = [[cell.strip() for cell in line.split("│")] for line in output.splitlines() if "│" in line]
    return {row[0]: row[1:] for row in rows}


def test_check_prints_the_table_from_the_ledger(ledger: str, config: Path):
    result = CliRunner().invoke(budgets, ["check", "--config", str(config), "--ledger", ledger])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "┃" in line)
    assert [cell.strip() for cell in header.split("┃")] == ["budget", "spent USD", "limit USD", "% used", "status"]
    lines = table_rows(result.stdout)
    assert lines["cicd/day"] == ["9.50", "10.00", "95.0%", "critical"]
    assert lines["cicd/day/team=platform"] == ["6.00", "4.00", "150.0%", "EXCEEDED"]
    assert lines["cicd/day/provider=anthropic"] == ["0.00", "1.00", "0.0%", "ok"]
    assert lines["production/day"] == ["1.25", "100.00", "1.2%", "ok"]  # 1.25 %, half to even
    assert lines["cicd/month"] == ["9.50", "200.00", "4.8%", "ok"]
    assert "BudgetStatus(" not in result.output and "SQLiteStore(" not in result.output


def test_amounts_are_exact_aligned_and_lower_bounds_when_some_cost_is_unknown(tmp_path: Path, config: Path):
    store = SQLiteStore(tmp_path / "u.db")
    store.write(
        [
            record(1, "cicd", "0.0012345"),  # never rounded to 0.00
            record(2, "production", "7"),
            replace(record(3, "production", "0"), amount=None, pricing_status="unpriced", request_model="new-model"),
        ]
    )
    store.close()
    result = CliRunner().invoke(budgets, ["check", "--config", str(config), "--ledger", f"sqlite://{tmp_path}/u.db"])
    assert result.exit_code == 0, result.output
    lines = table_rows(result.stdout)
    assert lines["cicd/day"][0] == "0.0012345"
    assert lines["production/day"][:2] == [">= 7.0000000", "100.00"]  # the unpriced call is left out: a bound
    spent = [line.split("│")[1] for line in result.stdout.splitlines() if "│" in line]
    assert len({len(cell) for cell in spent}) == 1 and len({cell.index(".") for cell in spent}) == 1  # aligned


def test_fail_on_exceeded_is_a_ci_gate(ledger: str, config: Path):
    run = CliRunner().invoke
    args = ["check", "--config", str(config), "--ledger", ledger, "--fail-on-exceeded"]
    assert run(budgets, [*args, "--environment", "cicd"]).exit_code == EXIT_EXCEEDED
    assert run(budgets, [*args, "--environment", "production"]).exit_code == 0
    assert run(budgets, [*args, "--environment", "cicd", "--period", "month"]).exit_code == 0
    unknown = run(budgets, [*args, "--environment", "nowhere"])
    assert unknown.exit_code == EXIT_ERROR and "no budget for environment 'nowhere'" in unknown.output
    bad = config.parent / "bad.yaml"
    bad.write_text("budgets:\n  daily: {cicd: -1}\n")
    broken = run(budgets, ["check", "--config", str(bad), "--ledger", ledger])
    assert broken.exit_code == EXIT_ERROR and f"{bad}:2: budgets.daily.cicd" in broken.output


class _Server:
    """A real HTTP server on 127.0.0.1 recording POSTed JSON and answering Prometheus `/api/v1/query`."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.queries: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)["query"][0]
                outer.queries.append(query)
                result = [{"metric": {}, "value": [0, answers[query]]}] if query in answers else []
                data = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: HELO/EHLO, MAIL, RCPT, DATA, QUIT; mails go to `server.mails`."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        sender, recipients = "", []
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "MAIL":
                sender = line.decode().strip()
                self.wfile.write(b"250 ok\r\n")
            elif verb == "RCPT":
                recipients.append(line.decode().strip())
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go\r\n")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk.decode())
                self.server.mails.append((sender, recipients, "".join(data)))  # type: ignore[attr-defined]
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def http() -> Iterator[_Server]:
    server = _Server({})
    yield server
    server.close()


@pytest.fixture
def smtp() -> Iterator[socketserver.ThreadingTCPServer]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.mails = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_notify_sends_to_slack_webhook_and_email(ledger: str, tmp_path: Path, http: _Server, smtp, monkeypatch):
    port = smtp.server_address[1]
    path = tmp_path / "notify.yaml"
    path.write_text(
        BUDGETS
        + "  alerts:\n    channels:\n"
        + "      - {type: slack, webhook: '${TEST_SLACK_URL}'}\n"
        + "      - {type: webhook, url: '${TEST_HOOK_URL}'}\n"
        + f"      - {{type: email, recipients: [devops@example.com], smtp: {{host: 127.0.0.1, port: {port}, "
        + "from: ai-cost@example.com}}\n"
    )
    monkeypatch.setenv("TEST_SLACK_URL", f"{http.url}/slack")
    monkeypatch.setenv("TEST_HOOK_URL", f"{http.url}/hook")
    args = ["check", "--config", str(path), "--ledger", ledger, "--environment", "cicd", "--period", "day", "--notify"]
    result = CliRunner().invoke(budgets, args)
    assert result.exit_code == 0, result.output
    posts = dict(http.posts)
    assert "cicd/day/team=platform" in posts["/slack"]["text"] and "EXCEEDED" in posts["/slack"]["text"]
    hooked = {b["budget"]: b for b in posts["/hook"]["budgets"]}
    assert set(hooked) == {"cicd/day", "cicd/day/team=platform"}
    assert hooked["cicd/day"] == {
        "budget": "cicd/day", "environment": "cicd", "period": "day", "scope": "environment", "scope_value": None,
        "amount": "10.00", "spent": "9.5", "severity": "critical", "threshold": "95",
    }  # fmt: skip
    [(sender, recipients, body)] = smtp.mails
    assert "ai-cost@example.com" in sender and "devops@example.com" in recipients[0]
    assert "Subject: AI spend: 2 budget(s) past a threshold" in body


def test_notify_with_an_unset_secret_fails_naming_the_channel(ledger: str, tmp_path: Path):
    path = tmp_path / "n.yaml"
    path.write_text(BUDGETS + "  alerts:\n    channels:\n      - {type: slack, webhook: '${UNSET_SLACK_URL}'}\n")
    result = CliRunner().invoke(budgets, ["check", "--config", str(path), "--ledger", ledger, "--notify"])
    assert result.exit_code == EXIT_ERROR
    assert f"{path}:9: slack channel.webhook: environment variable UNSET_SLACK_URL is not set" in result.output


def test_check_against_prometheus_asks_the_rules_promql(config: Path):
    server = _Server(
        {
            'sum(ai_cost_ledger_spend_USD{environment="cicd",period="day"})': "10.5",
            'sum(ai_cost_ledger_spend_USD{environment="production",period="day"})': "80",
        }
    )
    try:
        args = ["check", "--config", str(config), "--prometheus", server.url, "--period", "day"]
        result = CliRunner().invoke(budgets, [*args, "--fail-on-exceeded"])
        assert result.exit_code == EXIT_EXCEEDED, result.output
        lines = table_rows(result.stdout)
        assert lines["cicd/day"][-1] == "EXCEEDED" and lines["production/day"][-1] == "warning"
        assert lines["cicd/day/team=platform"] == ["unknown", "4.00", "", "no data"]
        assert (
            'sum(ai_cost_ledger_spend_by_team_USD{environment="cicd",period="day",team="platform"})' in server.queries
        )
    finally:
        server.close()
    down = CliRunner().invoke(budgets, ["check", "--config", str(config), "--prometheus", "http://127.0.0.1:9"])
    assert down.exit_code == EXIT_ERROR and "cannot query http://127.0.0.1:9" in down.output
