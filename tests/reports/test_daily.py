"""The daily report built from a planted SQLite ledger: every section of `DailyReport`, its JSON (validated against
the schema), the console and Markdown renderings, and the `daily` command (run with CliRunner, as
`otel-ai-cost report daily` runs it)."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from report_records import Ledger

from otel_ai_cost.cli.daily_report import daily
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.reports.console import render_console
from otel_ai_cost.reports.daily import build_daily_report
from otel_ai_cost.reports.json_report import load_schema, report_dict
from otel_ai_cost.reports.markdown import render_markdown
from otel_ai_cost.reports.model import DailyReport, DaySpend, Line, UnknownCost

D = Decimal
DAY = date(2026, 11, 22)
WEEK = [DAY - timedelta(days=n) for n in range(7, 0, -1)]
NOW = datetime(2026, 11, 23, 6, 30, tzinfo=timezone.utc)
BUDGETS = """\
budgets:
  daily:
    production: 20
  monthly:
    production: 500
  scoped:
    - {environment: production, period: day, team: search, amount: 8}
"""


def planted() -> list[LedgerRecord]:
    """A week of steady spend, then a day with a cicd spike, an unpriced model and a stream cut short."""
    ledger = Ledger()
    records = []
    for day in WEEK:
        records.append(ledger.call(day, "10.00", environment="production", team="search"))
        records.append(ledger.call(day, "1.00", environment="cicd", request_model="gpt-4o-mini",
                                   operation_type="integration_test", job_id="job-7"))  # fmt: skip
    records.append(ledger.call(WEEK[4], "0.50", environment="staging"))
    records += [
        ledger.call(DAY, "6.00", environment="production", team="search"),
        ledger.call(DAY, "4.50", environment="production", team="search", hour=18),
        ledger.call(
            DAY,
            "0.25",
            environment="production",
            provider="anthropic",
            request_model="claude-haiku-4-5",
            operation_type="summarize",
        ),
        ledger.call(DAY, None, environment="production", provider="mistral_ai", request_model="my-finetune"),
        # A stream cut before its usage arrived: priced from what was seen, its cost unknown (a lower bound).
        ledger.call(DAY, "0.10", environment="production", team="search", outcome="partial"),
        ledger.call(
            DAY,
            "8.00",
            environment="cicd",
            request_model="gpt-4o-mini",
            operation_type="integration_test",
            job_id="job-42",
        ),
    ]
    return records


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    store = SQLiteStore(path)
    store.write(planted())
    store.close()
    return path


@pytest.fixture
def store(ledger_path: Path):
    store = SQLiteStore(ledger_path)
    yield store
    store.close()


@pytest.fixture
def report(store, monkeypatch) -> DailyReport:
    # Every figure comes from aggregates: reading the records one by one would fail the test.
    monkeypatch.setattr(store, "query", lambda *_: pytest.fail("the report read records, not aggregates"))
    return build_daily_report(store, day=DAY, now=NOW)


def test_summary_and_groups_are_exact_and_count_unknown_costs(report):
    assert report.total == Line("total", D("18.85"), 6, 2)
    assert report.by_environment == [Line("production", D("10.85"), 5, 2), Line("cicd", D("8.00"), 1, 0)]
    assert report.by_service == [Line("openai", D("18.60"), 4, 1), Line("anthropic", D("0.25"), 1, 0),
                                 Line("mistral_ai", D(0), 1, 1)]  # fmt: skip
    assert report.top_operations == [
        Line("chat", D("10.60"), 4, 2),
        Line("integration_test", D("8.00"), 1, 0),
        Line("summarize", D("0.25"), 1, 0),
    ]
    assert report.top_operations[0].average == D("5.3")  # 10.60 over its 2 calls of known cost
    assert [line.name for line in report.by_model] == ["gpt-4o", "gpt-4o-mini", "claude-haiku-4-5", "my-finetune"]
    assert report.by_team == [Line("search", D("10.60"), 3, 1), Line("", D("8.25"), 3, 1)]
    assert report.by_job == [Line("job-42", D("8.00"), 1, 0), Line("", D("10.85"), 5, 2)][::-1]
    assert report.unknown == [
        UnknownCost("mistral_ai", "my-finetune", 1, "unpriced"),
        UnknownCost("openai", "gpt-4o", 1, "partial_or_no_usage"),
    ]
    assert report.ledger.startswith("sqlite:///") and report.ledger.endswith("ledger.db")
    assert report.generated_at == NOW and (report.date, report.days, report.environment) == (DAY, 1, None)


def test_daily_carries_the_trailing_week_for_every_environment(report):
    days = sorted({spend.day for spend in report.daily})
    assert days == [*WEEK, DAY]
    assert {spend.environment for spend in report.daily} == {"cicd", "production", "staging"}
    assert len(report.daily) == 8 * 3  # $0 where an environment spent nothing, not a gap
    assert DaySpend(WEEK[0], "staging", D(0), 0, 0) in report.daily
    assert DaySpend(WEEK[4], "staging", D("0.50"), 1, 0) in report.daily
    assert DaySpend(DAY, "production", D("10.85"), 5, 2) in report.daily


def test_anomalies_and_savings_are_in_the_report(report):
    assert [(a.kind, dict(a.subject)) for a in report.anomalies] == [
        ("spike", {"environment": "cicd"}),
        ("new_model", {"environment": "production", "provider": "anthropic", "model": "claude-haiku-4-5"}),
        ("new_model", {"environment": "production", "provider": "mistral_ai", "model": "my-finetune"}),
        ("new_operation_type", {"environment": "production", "operation_type": "summarize"}),
        ("unpriced", {"environment": "production", "provider": "openai", "model": "gpt-4o"}),  # $0.10 first
        ("unpriced", {"environment": "production", "provider": "mistral_ai", "model": "my-finetune"}),
    ]
    assert "a 700% increase in usage compared to the 7-day average" in report.anomalies[0].message
    kinds = {saving.kind for saving in report.savings}
    assert {"batch_tier", "prompt_cache", "cheaper_model"} <= kinds  # integration tests; 100 uncached tokens; mini
    assert all(saving.amount > 0 for saving in report.savings)


def test_a_longer_period_and_one_environment(store):
    report = build_daily_report(store, day=DAY, days=3, environment="cicd", now=NOW)
    assert report.total == Line("total", D("10.00"), 3, 0)
    assert [line.name for line in report.by_environment] == ["cicd"]
    assert min(spend.day for spend in report.daily) == DAY - timedelta(days=9)
    assert [a.kind for a in report.anomalies] == ["spike"]
    assert report.extra["start_date"] == DAY - timedelta(days=2)
    with pytest.raises(ValueError, match="days"):
        build_daily_report(store, day=DAY, days=0)


def test_budgets_from_a_file_with_their_burn(store, tmp_path):
    path = tmp_path / "budgets.yaml"
    path.write_text(BUDGETS)

    report = build_daily_report(store, day=DAY, budgets=path, now=NOW)

    burns = {burn.name: burn for burn in report.budgets}
    assert set(burns) == {"production/day", "production/month", "production/day/team=search"}
    day_budget = burns["production/day"]
    assert (day_budget.period, day_budget.limit, day_budget.spent) == ("daily", D(20), D("10.85"))
    assert day_budget.points == ((DAY, D("10.85")),) and day_budget.unknown_cost_calls == 2
    month = burns["production/month"]
    assert month.period == "monthly" and month.spent == D("80.85")  # 7 x 10.00 + 10.85
    assert month.points[0] == (date(2026, 11, 1), D(0)) and len(month.points) == 22
    assert month.points[-2:] == ((WEEK[-1], D(70)), (DAY, D("80.85")))
    assert burns["production/day/team=search"].spent == D("10.60")
    assert build_daily_report(store, day=DAY, budgets=path, environment="cicd").budgets == []


def test_the_json_follows_the_seeds_shape_and_the_schema(report):
    document = json.loads(json.dumps(report_dict(report)))  # JSON-ready: no Decimal, date or float left

    jsonschema.Draft202012Validator(load_schema()).validate(document)
    assert document["date"] == "2026-11-22"
    assert document["summary"]["total_cost"] == "18.85" and document["summary"]["lower_bound"] is True
    assert document["summary"]["by_environment"] == {"production": "10.85", "cicd": "8.00"}
    assert document["summary"]["by_service"] == {"openai": "18.60", "anthropic": "0.25", "mistral_ai": None}
    assert document["top_operations"][1] == {
        "operation_type": "integration_test",
        "cost": "8.00",
        "count": 1,
        "avg_cost": "8.00",
        "unknown_cost_calls": 0,
        "lower_bound": False,
    }
    spike = document["anomalies"][0]
    assert spike["type"] == "spike" and spike["environment"] == "cicd"
    assert spike["description"].startswith("environment cicd: $8.00 on 2026-11-22, a 700% increase in usage")
    assert (spike["amount"], spike["baseline"], spike["factor"]) == ("8.00", "1.00", "8")
    unpriced = [a for a in document["anomalies"] if a["type"] == "unpriced" and a["model"] == "my-finetune"]
    assert unpriced[0]["amount"] is None  # no call of it has a known cost: null, never "0.00"
    assert document["unknown_cost"][0] == {"provider": "mistral_ai", "model": "my-finetune", "calls": 1,
                                           "reason": "unpriced"}  # fmt: skip
    assert document["ledger"].startswith("sqlite:///") and "SQLiteStore" not in json.dumps(document)


def test_the_schema_refuses_a_float_amount_and_a_missing_section(report):
    validator = jsonschema.Draft202012Validator(load_schema())
    document = report_dict(report)
    document["summary"]["total_cost"] = 18.85
    assert any("total_cost" in list(map(str, error.path)) for error in validator.iter_errors(document))
    del document["anomalies"]
    assert not validator.is_valid(document)


def table_lines(text: str, title: str) -> tuple[str, dict[str, str]]:
    """The header of the table titled `title` and its data lines by their first cell."""
    lines = [line.rstrip() for line in text.splitlines()]
    start = lines.index(title)
    rows = {}
    for line in lines[start + 3 :]:
        if not line.strip():
            break
        if "│" in line:
            rows[line.split("│")[0].strip()] = line
    return lines[start + 1], rows


def _column_of_points(text: str, title: str) -> set[int]:
    """Where the decimal point of the `cost USD` column falls on each data line of the table titled `title`."""
    header, rows = table_lines(text, title)
    end = header.index("cost USD") + len("cost USD")
    return {line[:end].rindex(".") for line in rows.values() if "." in line[:end][-12:]}


def test_console_tables_are_aligned_and_say_cost_unknown(report):
    text = render_console(report)

    assert text.startswith("AI usage report 2026-11-22, all environments\nledger sqlite:///")
    assert "Total: at least $18.85 over 6 calls; 2 call(s) of cost unknown are not in it" in text
    for title in ("By environment", "By service (provider)", "Top operations", "By team", "By job"):
        assert len(_column_of_points(text, title)) == 1, title  # one decimal point column per table
    header, environments = table_lines(text, "By environment")
    assert header.split("┃")[-1].strip() == "cost unknown"
    assert environments["production"].split("│")[2].strip() == ">= 10.85"  # a lower bound, 2 calls left out
    assert environments["production"].split("│")[-1].strip() == "2"
    assert [cell.strip() for cell in table_lines(text, "By service (provider)")[1]["mistral_ai"].split("│")] == [
        "mistral_ai", "1", "unknown", "unknown", "1"
    ]  # fmt: skip
    assert "(none)" in table_lines(text, "By team")[1] and "(none)" in table_lines(text, "By job")[1]
    assert table_lines(text, "By team")[1]["total"].split("│")[2].strip() == ">= 18.85"
    assert "a 700% increase in usage" in text and "my-finetune" in text
    assert "SQLiteStore" not in text


def test_markdown_escapes_names_from_telemetry(tmp_path):
    store = SQLiteStore(tmp_path / "md.db")
    store.write([Ledger().call(DAY, "1.25", team="a|b *bold*")])
    text = render_markdown(build_daily_report(store, day=DAY, now=NOW))
    store.close()
    assert "| a\\|b \\*bold\\* | 1 | 1.25 | 1.25 | 0 |" in text
    assert text.startswith("## AI usage report 2026-11-22\n")
    assert "**Total: $1.25** over 1 calls." in text


# -- the command ------------------------------------------------------------------------------------------------


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(daily, list(args), env=env, catch_exceptions=False)


def test_command_json_to_a_file(ledger_path, tmp_path):
    out = tmp_path / "report.json"
    result = run("--ledger", f"sqlite://{ledger_path}", "--date", "2026-11-22", "--format", "json", "-o", str(out))

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote the json report of 2026-11-22 to {out}" in result.stderr
    document = json.loads(out.read_text())
    jsonschema.Draft202012Validator(load_schema()).validate(document)
    assert document["summary"]["total_cost"] == "18.85"
    assert document["ledger"] == f"sqlite://{ledger_path}"


def test_command_console_markdown_budgets_and_factor(ledger_path, tmp_path):
    ledger = f"sqlite://{ledger_path}"
    console = run("--ledger", ledger, "--date", "2026-11-22", "--environment", "cicd")
    assert console.exit_code == 0 and "AI usage report 2026-11-22, environment cicd" in console.stdout

    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    markdown = run("--ledger", ledger, "--date", "2026-11-22", "--format", "markdown", "--budgets", str(budgets))
    assert markdown.exit_code == 0
    assert "**Budgets** (at 2026-11-22)" in markdown.stdout and "production/month" in markdown.stdout
    assert f"budgets: {budgets} (from --budgets)" in markdown.stderr

    calm = run("--ledger", ledger, "--date", "2026-11-22", "--format", "json", "--factor", "9")
    assert [a["type"] for a in json.loads(calm.stdout)["anomalies"]].count("spike") == 0  # 8x < 9x
    bad = run("--ledger", ledger, "--factor", "1")
    assert bad.exit_code == 2 and "above 1" in bad.stderr


def test_command_errors_name_the_problem(ledger_path, tmp_path, monkeypatch):
    ledger = f"sqlite://{ledger_path}"
    typo = run("--ledger", ledger, "--date", "2026-11-22", "--environment", "prod")
    assert typo.exit_code == 2 and "Did you mean 'production'?" in typo.stderr

    missing = run("--ledger", f"sqlite://{tmp_path / 'nothing.db'}", "--date", "2026-11-22")
    assert missing.exit_code == 1 and "nothing.db" in missing.stderr
    assert not (tmp_path / "nothing.db").exists()  # a report never creates a ledger

    bad_day = run("--ledger", ledger, "--date", "22/11/2026")
    assert bad_day.exit_code == 2 and "YYYY-MM-DD" in bad_day.stderr

    monkeypatch.setitem(sys.modules, "otel_ai_cost.reports.html", None)  # as if the module were not installed
    html = run("--ledger", ledger, "--date", "2026-11-22", "--format", "html")
    assert html.exit_code == 1 and "the HTML report is not available" in html.stderr


def test_command_html_is_one_page_with_the_figures(ledger_path, tmp_path):
    out = tmp_path / "report.html"
    result = run("--ledger", f"sqlite://{ledger_path}", "--date", "2026-11-22", "--format", "html", "-o", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and "18.85" in page
