"""`otel-ai-cost report` and `jobs show` read like a good CLI table (issue 12): amounts right-aligned on the decimal
point at one exact precision, subtotals per group of the first `--by` levels and a total with exact sums, lower
bounds (`>=`) where calls of unknown cost are left out, `(none)` for empty attribution, the same header words in
both commands, and the ledger named by its URL, never a Python repr. Real SQLite ledgers, click's CliRunner."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otel_ai_cost.cli import main
from otel_ai_cost.cli.report import ledger_url
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.reports.tables import HEADERS

MakeRecord = Callable[..., LedgerRecord]
PERIOD = ["--since", "2026-01-29", "--until", "2026-01-30"]


def _at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


@pytest.fixture
def ledger(ledger_path: Path, make_record: MakeRecord) -> str:
    """Two days of openai (two models) and anthropic (one model), amounts of 2 to 10 decimals, one unpriced call,
    one job, and calls without a team."""
    with SQLiteStore(ledger_path) as store:
        store.write(
            [
                make_record(timestamp=_at("2026-01-29"), amount=Decimal("12.5"), team="search", job_id="job-1"),
                make_record(
                    timestamp=_at("2026-01-29"),
                    amount=Decimal("0.000235"),
                    request_model="gpt-4.1",
                    response_model="",
                    job_id="job-1",
                ),
                make_record(timestamp=_at("2026-01-30"), amount=Decimal("1000"), team="search"),
                make_record(
                    timestamp=_at("2026-01-30"),
                    amount=Decimal("0.0000000001"),
                    provider="anthropic",
                    request_model="claude-haiku-4-5",
                    response_model="",
                    job_id="job-1",
                ),
                make_record(
                    timestamp=_at("2026-01-30"),
                    amount=Decimal("3.25"),
                    provider="anthropic",
                    request_model="claude-haiku-4-5",
                    response_model="",
                ),
                make_record(
                    timestamp=_at("2026-01-30"),
                    amount=None,
                    pricing_status="unpriced",
                    request_model="acme-llm-7b",
                    response_model="",
                    job_id="job-1",
                ),
            ]
        )
    return f"sqlite://{ledger_path}"


def _run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    return result


def _table_lines(text: str) -> list[str]:
    """The lines of the (first) table that hold cells: its heading, rows, subtotals and total."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "┃" in line)
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return [line for line in lines[start:end] if "│" in line or "┃" in line]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split("[│┃]", line)]


def _column(lines: list[str], header: str) -> tuple[int, list[str], list[str]]:
    """(index, cells under `header`, whole lines) of a column, below the heading."""
    index = _cells(lines[0]).index(header)
    return index, [_cells(line)[index] for line in lines[1:]], lines[1:]


def _amount(cell: str) -> Decimal:
    return Decimal(cell.removeprefix(">= ").replace(",", ""))


def _rows(text: str) -> dict[tuple[str, ...], list[str]]:
    """Each line below the heading by its first two cells (its group, `subtotal` or `total`)."""
    return {tuple(cells[:2]): cells for cells in map(_cells, _table_lines(text)[1:])}


def _decimal_point_columns(lines: list[str], index: int) -> set[int]:
    """The character positions of the decimal points in cell `index` of each line."""
    points = set()
    for line in lines:
        edges = [-1, *(m.start() for m in re.finditer("[│┃]", line)), len(line)]
        cell = line[edges[index] + 1 : edges[index + 1]]
        if "." in cell:
            points.add(edges[index] + 1 + cell.index("."))
    return points


# -- alignment and precision ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["report", *PERIOD, "--by", "provider,model"], ["jobs", "show", "job-1"]])
def test_the_decimal_points_of_the_cost_column_are_in_one_character_column(ledger: str, command: list[str]):
    result = _run(*command, "--ledger", ledger)
    assert result.exit_code == 0, result.output
    lines = _table_lines(result.output)
    index, cells, body = _column(lines, HEADERS["amount"])
    assert sum("." in cell for cell in cells) >= 4  # amounts, subtotals or the total: enough to line up
    assert len(_decimal_point_columns(body, index)) == 1, result.output


@pytest.mark.parametrize("command", [["report", *PERIOD, "--by", "day,model"], ["jobs", "show", "job-1"]])
def test_every_amount_of_the_column_has_the_same_number_of_decimals_exactly(ledger: str, command: list[str]):
    result = _run(*command, "--ledger", ledger)
    _, cells, _ = _column(_table_lines(result.output), HEADERS["amount"])
    amounts = [cell for cell in cells if cell not in ("unknown", "-")]
    assert {len(cell.rsplit(".", 1)[1]) for cell in amounts} == {10}  # 0.0000000001 sets it: never rounded
    assert "0.0002350000" in cells  # 0.000235 padded, not cut


# -- subtotals and the total ------------------------------------------------------------------------------------


def test_a_subtotal_per_provider_of_more_than_one_model_and_a_total_with_exact_sums(ledger: str):
    result = _run("report", *PERIOD, "--by", "provider,model", "--ledger", ledger)
    rows = _rows(result.output)
    assert list(rows) == [
        ("anthropic", "claude-haiku-4-5"),  # one model: its line is the provider's subtotal
        ("openai", "acme-llm-7b"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4o-mini-2024-07-18"),
        ("openai", "subtotal"),
        ("total", ""),
    ]
    openai = [rows["openai", model] for model in ("gpt-4.1", "gpt-4o-mini-2024-07-18")]
    assert _amount(rows["openai", "subtotal"][4]) == sum(_amount(row[4]) for row in openai) == Decimal("1012.500235")
    assert rows["openai", "subtotal"][2] == "4"  # calls
    expected = Decimal("12.5") + Decimal("0.000235") + Decimal("1000") + Decimal("0.0000000001") + Decimal("3.25")
    assert _amount(rows["total", ""][4]) == expected
    assert rows["total", ""][2:4] == ["6", "1"]  # calls, of which 1 of unknown cost


def test_nested_groupings_get_a_subtotal_per_level(ledger: str):
    result = _run("report", *PERIOD, "--by", "day,provider,model", "--ledger", ledger)
    lines = [_cells(line) for line in _table_lines(result.output)[1:]]
    assert [cells[:3] for cells in lines] == [
        ["2026-01-29", "openai", "gpt-4.1"],
        ["2026-01-29", "openai", "gpt-4o-mini-2024-07-18"],
        ["2026-01-29", "openai", "subtotal"],  # no day subtotal: the day has one provider, whose subtotal it is
        ["2026-01-30", "anthropic", "claude-haiku-4-5"],
        ["2026-01-30", "openai", "acme-llm-7b"],
        ["2026-01-30", "openai", "gpt-4o-mini-2024-07-18"],
        ["2026-01-30", "openai", "subtotal"],
        ["2026-01-30", "subtotal", ""],
        ["total", "", ""],
    ]
    amounts = [cells[5] for cells in lines]
    assert _amount(amounts[2]) == Decimal("12.500235")
    assert _amount(amounts[7]) == Decimal("1003.2500000001") and amounts[7].startswith(">= ")
    assert _amount(amounts[8]) == Decimal("12.500235") + Decimal("1003.2500000001")


def test_one_level_has_a_total_and_no_subtotal(ledger: str):
    result = _run("report", *PERIOD, "--by", "provider", "--ledger", ledger)
    assert [key[0] for key in _rows(result.output)] == ["anthropic", "openai", "total"]
    assert "subtotal" not in result.output


# -- lower bounds and empty attribution ------------------------------------------------------------------------


def test_every_sum_that_leaves_out_calls_of_unknown_cost_is_a_lower_bound(ledger: str):
    rows = _rows(_run("report", *PERIOD, "--by", "provider,model", "--ledger", ledger).output)
    assert rows["openai", "acme-llm-7b"][3:5] == ["1", "unknown"]  # nothing known: unknown, never 0
    assert rows["openai", "subtotal"][4].startswith(">= ") and rows["total", ""][4].startswith(">= ")
    assert not rows["anthropic", "claude-haiku-4-5"][4].startswith(">=")  # every cost known: exact
    assert not rows["openai", "gpt-4.1"][4].startswith(">=")
    job = _run("jobs", "show", "job-1", "--ledger", ledger).output
    total = _cells(next(line for line in _table_lines(job) if line.startswith("total")))
    assert total[9] == ">= 12.5002350001"


def test_empty_attribution_shows_as_none(ledger: str):
    result = _run("report", *PERIOD, "--by", "team,job_id", "--ledger", ledger)
    heading = _cells(_table_lines(result.output)[0])
    assert heading[:2] == [HEADERS["team"], HEADERS["job_id"]] == ["team", "job"]
    assert ("(none)", "(none)") in _rows(result.output) and ("(none)", "job-1") in _rows(result.output)
    assert ("(none)", "subtotal") in _rows(result.output)


# -- one vocabulary, no reprs -----------------------------------------------------------------------------------


def test_report_and_jobs_show_use_the_same_header_words(ledger: str):
    report = _cells(_table_lines(_run("report", *PERIOD, "--by", "environment,provider,model", "--ledger",
                                      ledger).output)[0])  # fmt: skip
    job = _cells(_table_lines(_run("jobs", "show", "job-1", "--ledger", ledger).output)[0])
    shared = ["environment", "provider", "model", "amount", "input_tokens", "output_tokens",
              "cache_read_input_tokens", "cache_write_input_tokens", "reasoning_output_tokens"]  # fmt: skip
    for key in shared:
        assert HEADERS[key] in report and HEADERS[key] in job, key
    assert set(report) | set(job) <= set(HEADERS.values())


@pytest.mark.parametrize(
    "command",
    [
        ["report", *PERIOD],
        ["report", *PERIOD, "--format", "json"],
        ["report", "-e", "prod"],  # the error names the ledger
        ["report", "--since", "2020-01-01", "--until", "2020-01-01", "--provider", "opneai"],
        ["jobs", "show", "job-1"],
        ["jobs", "show", "job-1", "-e", "prod"],
        ["ledger", "init"],
    ],
)
def test_no_python_repr_reaches_the_user_only_the_ledger_url(ledger: str, command: list[str]):
    result = CliRunner().invoke(main, [*command, "--ledger", ledger])
    assert "Store(" not in result.output + result.stderr
    if command[0] in ("report", "ledger") and command[-1] != "opneai":
        assert ledger in result.output + result.stderr  # the URL as the user gave it


def test_the_default_ledger_is_named_by_its_sqlite_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_record: MakeRecord
):
    monkeypatch.delenv("OTEL_AI_COST_LEDGER", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    default = tmp_path / "otel-ai-cost" / "usage.db"
    with SQLiteStore(default) as store:
        store.write([make_record(timestamp=_at("2026-01-30"), amount=Decimal("1"))])
    for command in (["report", *PERIOD], ["report", "-e", "prod"]):
        result = _run(*command)
        assert f"sqlite://{default}" in result.output and "Store(" not in result.output, result.output


# -- report is a group that still works on its own -------------------------------------------------------------


def test_report_without_a_subcommand_is_the_report(ledger: str):
    by_day = _run("report", *PERIOD, "--by", "day", "--ledger", ledger)
    assert by_day.exit_code == 0, by_day.output
    assert [key[0] for key in _rows(by_day.output)] == ["2026-01-29", "2026-01-30", "total"]
    help_text = _run("report", "--help")
    assert help_text.exit_code == 0 and "--by TEXT" in help_text.output and "[COMMAND [ARGS]...]" in help_text.output
    assert "daily" in help_text.output  # the subcommand is listed
    daily = _run("report", "daily", "--date", "2026-01-30", "--ledger", ledger)
    assert daily.exit_code == 0, daily.output
    assert "Store(" not in daily.output and "no calls recorded for this selection" not in daily.output


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("dynamodb://t?region=r&endpoint_url=http://AKIA1:s3cret@127.0.0.1:8000",
         "dynamodb://t?region=r&endpoint_url=http://127.0.0.1:8000"),
        ("dynamodb://t?region=r&endpoint_url=http%3A%2F%2FAKIA1%3As3cret%40host",
         "dynamodb://t?region=r&endpoint_url=http%3A%2F%2Fhost"),
        ("sqlite:///srv/me@work/usage.db", "sqlite:///srv/me@work/usage.db"),  # a file name, shown as it is
        (" sqlite:///x.db ", "sqlite:///x.db"),
    ],
)  # fmt: skip
def test_the_ledger_url_shown_never_carries_a_password(given: str, shown: str):
    assert ledger_url(given) == shown
