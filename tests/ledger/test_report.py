"""`otel-ai-cost report` and `otel-ai-cost jobs show` against a real SQLite ledger (click's CliRunner)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otel_ai_cost.cli import main
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.report import format_amount, render_report
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import AggregateRow

MakeRecord = Callable[..., LedgerRecord]  # the `make_record` fixture of conftest.py
PERIOD = ["--since", "2026-01-29", "--until", "2026-01-30"]


def _at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00")


@pytest.fixture
def ledger(ledger_path: Path, make_record: MakeRecord) -> str:
    with SQLiteStore(ledger_path) as store:
        store.write(
            [
                make_record(
                    timestamp=_at("2026-01-29"),
                    amount=Decimal("0.5"),
                    team="search",
                    job_id="job-42",
                    operation_type="labels",
                    input_tokens=1000,
                    output_tokens=100,
                ),
                make_record(timestamp=_at("2026-01-30"), amount=Decimal("0.25"), job_id="job-42", input_tokens=10),
                make_record(
                    timestamp=_at("2026-01-30"),
                    amount=Decimal("1.000000000001"),
                    provider="anthropic",
                    request_model="claude-haiku-4-5",
                    response_model="",
                    cache_read_input_tokens=9000,
                ),
                make_record(
                    timestamp=_at("2026-01-30", 13),
                    amount=None,
                    pricing_status="unpriced",
                    request_model="acme-llm-7b",
                    response_model="",
                    job_id="job-42",
                ),
                make_record(timestamp=_at("2026-01-30"), amount=Decimal("100"), environment="staging"),
                make_record(timestamp=_at("2026-01-28"), amount=Decimal("7")),  # outside the period
            ]
        )
    return f"sqlite://{ledger_path}"


def _run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    return result


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split("[│┃]", line)]


def _rows(text: str) -> list[list[str]]:
    """The table's lines below its heading, each split into its cells: the rows, subtotals and the total."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("━")) + 1
    end = next((i for i in range(start, len(lines)) if "│" not in lines[i] and "─" not in lines[i]), len(lines))
    return [_cells(line) for line in lines[start:end] if "│" in line]


def _heading(text: str) -> list[str]:
    return _cells(next(line for line in text.splitlines() if "┃" in line))


# -- report ---------------------------------------------------------------------------------------------------


def test_report_table_by_provider_and_model(ledger: str):
    result = _run("report", *PERIOD, "--ledger", ledger)
    assert result.exit_code == 0, result.output
    assert _heading(result.output) == ["provider", "model", "calls", "cost unknown", "cost USD", "input tokens",
                                       "output tokens", "cache read", "cache write", "reasoning"]  # fmt: skip
    # One precision for the column (exact: the most decimals any amount needs); a subtotal per provider of more
    # than one model; the total a lower bound: 1 cost unknown.
    assert _rows(result.output) == [
        ["anthropic", "claude-haiku-4-5", "1", "0", "1.000000000001", "100", "20", "9,000", "0", "0"],
        ["openai", "acme-llm-7b", "1", "1", "unknown", "100", "20", "0", "0", "0"],
        ["openai", "gpt-4o-mini-2024-07-18", "3", "0", "100.750000000000", "1,110", "140", "0", "0", "0"],
        ["openai", "subtotal", "4", "1", ">= 100.750000000000", "1,210", "160", "0", "0", "0"],
        ["total", "", "5", "1", ">= 101.750000000001", "1,310", "180", "9,000", "0", "0"],
    ]
    assert "!! 1 call(s) have no price: their cost is UNKNOWN, not zero" in result.output
    assert "no price: openai acme-llm-7b: 1 call(s)" in result.output
    assert f"2026-01-29 to 2026-01-30 (UTC days), environment: all, ledger: {ledger}" in result.output
    assert "Store(" not in result.output


def test_report_for_one_environment_never_shows_another(ledger: str):
    result = _run("report", *PERIOD, "--environment", "production", "--by", "environment,day", "--ledger", ledger)
    assert [row[:4] for row in _rows(result.output)] == [
        ["production", "2026-01-29", "1", "0"],
        ["production", "2026-01-30", "3", "1"],
        ["production", "subtotal", "4", "1"],
        ["total", "", "4", "1"],
    ]
    assert "100.00" not in result.output and "staging" not in result.output


def test_report_json_is_exact(ledger: str):
    result = _run("report", *PERIOD, "--by", "day,provider", "--format", "json", "--ledger", ledger)
    document = json.loads(result.output)
    assert document["group_by"] == ["day", "provider"] and document["currency"] == "USD"
    assert document["rows"][0] == {
        "day": "2026-01-29", "provider": "openai", "calls": 1, "unpriced_calls": 0, "amount": "0.5",
        "input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 0, "cache_write_input_tokens": 0,
        "reasoning_output_tokens": 0, "unknown_cost_calls": 0,
    }  # fmt: skip
    assert [(r["day"], r["provider"], r["amount"]) for r in document["rows"][1:]] == [
        ("2026-01-30", "anthropic", "1.000000000001"),
        ("2026-01-30", "openai", "100.25"),
    ]
    assert document["total"]["amount"] == "101.750000000001" and document["total"]["unpriced_calls"] == 1
    assert document["unpriced"] == [{"provider": "openai", "model": "acme-llm-7b", "calls": 1}]
    assert (document["since"], document["until"], document["environment"]) == ("2026-01-29", "2026-01-30", None)


def test_report_csv(ledger: str):
    result = _run("report", *PERIOD, "--by", "team", "--format", "csv", "--ledger", ledger)
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["team"], r["calls"], r["unpriced_calls"], r["amount"], r["currency"]) for r in rows] == [
        ("", "4", "1", "101.250000000001", "USD"),
        ("search", "1", "0", "0.5", "USD"),
    ]


def test_report_filters(ledger: str):
    by_model = json.loads(_run("report", *PERIOD, "--model", "claude-haiku-4-5", "--by", "", "--format", "json",
                               "--ledger", ledger).output)  # fmt: skip
    assert by_model["total"]["amount"] == "1.000000000001"
    by_team = json.loads(_run("report", *PERIOD, "--team", "search", "--format", "json", "--ledger", ledger).output)
    assert by_team["total"]["calls"] == 1
    since_only = json.loads(_run("report", "--since", "2026-01-28", "--until", "2026-01-28", "--format", "json",
                                 "--ledger", ledger).output)  # fmt: skip
    assert since_only["total"]["amount"] == "7"


def test_report_last_n_days(ledger_path: Path, make_record: MakeRecord):
    now = datetime.now(timezone.utc)
    with SQLiteStore(ledger_path) as store:
        store.write([make_record(timestamp=now, amount=Decimal("1")),
                     make_record(timestamp=now - timedelta(days=6), amount=Decimal("2")),
                     make_record(timestamp=now - timedelta(days=7), amount=Decimal("4"))])  # fmt: skip
    ledger = f"sqlite://{ledger_path}"
    week = json.loads(_run("report", "--days", "7", "--format", "json", "--ledger", ledger).output)
    assert week["total"]["amount"] == "3"
    assert json.loads(_run("report", "--format", "json", "--ledger", ledger).output)["total"]["amount"] == "7"


def test_report_of_an_empty_selection(ledger: str):
    result = _run("report", "--since", "2020-01-01", "--until", "2020-01-02", "--ledger", ledger)
    assert result.exit_code == 0 and "no calls recorded for this selection" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "3", "--since", "2026-01-01"], "give --days or --since, not both"),
        (["--since", "2026-02-01", "--until", "2026-01-01"], "is after --until"),
        (["--since", "January"], "expected a UTC day YYYY-MM-DD"),
        (["--by", "day,colour"], "cannot group by colour"),
        (["--format", "xml"], "'xml' is not one of"),
        (["--days", "0"], "0 is not in the range"),
    ],
)
def test_report_usage_errors(ledger: str, args: list[str], message: str):
    result = _run("report", *args, "--ledger", ledger)
    assert result.exit_code == 2 and message in result.output


def test_report_with_a_bad_or_disabled_ledger(monkeypatch: pytest.MonkeyPatch):
    result = _run("report", "--ledger", "none")
    assert result.exit_code == 1 and "the ledger is disabled (--ledger=none)" in result.output
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", "ledger.db")
    result = _run("report")
    assert result.exit_code == 1 and "OTEL_AI_COST_LEDGER='ledger.db' is not a ledger URL" in result.output


def test_report_uses_the_configured_ledger(monkeypatch: pytest.MonkeyPatch, ledger: str):
    monkeypatch.setenv("OTEL_AI_COST_LEDGER", ledger)
    assert json.loads(_run("report", *PERIOD, "--format", "json").output)["total"]["calls"] == 5


# -- jobs show ------------------------------------------------------------------------------------------------


def test_jobs_show_lists_every_call_with_its_cost_and_trace_id(ledger: str):
    result = _run("jobs", "show", "job-42", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("job job-42: 3 call(s)")
    rows = _rows(result.output)
    assert [(r[0], r[2], r[3], r[9], r[10], r[11]) for r in rows] == [
        ("2026-01-29 12:00:00", "openai", "gpt-4o-mini-2024-07-18", "0.50", "priced", f"{1:032x}"),
        ("2026-01-30 12:00:00", "openai", "gpt-4o-mini-2024-07-18", "0.25", "priced", f"{2:032x}"),
        ("2026-01-30 13:00:00", "openai", "acme-llm-7b", "unknown", "unpriced", f"{4:032x}"),
        ("total", "", "", ">= 0.75", "", ""),  # the input tokens summed, the cost a lower bound
    ]
    assert rows[-1][4] == "1,110"
    assert "job total: >= 0.75 USD over 3 call(s), 1 of unknown cost" in result.output
    assert "!! 1 call(s) have no price" in result.output and "the job total is a lower bound" in result.output


def test_jobs_show_json_and_unknown_job(ledger: str):
    document = json.loads(_run("jobs", "show", "job-42", "--format", "json", "--ledger", ledger).output)
    assert document["total"] == {"amount": "0.75", "calls": 3, "unpriced_calls": 1, "unknown_cost_calls": 1}
    assert [c["trace_id"] for c in document["calls"]] == [f"{n:032x}" for n in (1, 2, 4)]
    result = _run("jobs", "show", "job-0", "--ledger", ledger)
    assert result.exit_code == 1 and "no calls recorded for job job-0" in result.output
    result = _run("jobs", "show", "job-42", "--environment", "staging", "--ledger", ledger)
    assert result.exit_code == 1


# -- rendering ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("45.23", "45.23"),
        ("45.230", "45.23"),
        ("0.000235200", "0.0002352"),
        ("20", "20.00"),
        ("1E+3", "1000.00"),
        ("0.000000000001", "0.000000000001"),
        ("0", "0.00"),
    ],
)
def test_amounts_are_shown_exactly(amount: str, text: str):
    assert format_amount(Decimal(amount)) == text
    assert format_amount(None) == "-"


def test_render_report_without_groups_and_unknown_format():
    row = AggregateRow((), Decimal("0.1"), 2, 0, 1, 2, 3, 4, 5)
    table = render_report([row], [], "table")
    assert _rows(table) == [["total", "2", "0", "0.10", "1", "2", "3", "4", "5"]]
    assert _heading(table)[1:4] == ["calls", "cost unknown", "cost USD"]
    assert "!!" not in table
    with pytest.raises(ValueError, match="format must be one of"):
        render_report([row], [], "xml")
