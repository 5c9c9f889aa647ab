"""`record` and `import` at their edges: what "the same entry" is, bounded values, nesting, a ledger that fails
partway through an import, and progress."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_ai_cost.cli import main
from otel_ai_cost.ledger.manual import ImportInterrupted, UsageFileError, import_usage_file, parse_usage_lines
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery


def _line(**fields: object) -> str:
    return json.dumps({"timestamp": "2026-01-30T14:00:00Z", "service": "openai", **fields})


def _usage_file(path: Path, count: int) -> Path:
    lines = [_line(cost_usd=f"0.{n:04d}", note=f"line {n}") for n in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _ledger_total(path: Path) -> tuple[int, Decimal]:
    with SQLiteStore(path) as store:
        records = list(store.query(UsageQuery()))
    return len(records), sum((r.amount or Decimal(0) for r in records), Decimal(0))


# -- item 7: the same entry recorded twice is one record ----------------------------------------------------


def test_recording_the_same_entry_twice_without_a_date_stores_it_once(ledger_path: Path):
    args = ["record", "--provider", "openai", "--amount", "45.23", "--source", "subscription", "--ledger",
            f"sqlite://{ledger_path}"]  # fmt: skip
    first, second = CliRunner().invoke(main, args), CliRunner().invoke(main, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.output.startswith("recorded 45.23 USD") and second.output.startswith("already recorded: 45.23 USD")
    assert _ledger_total(ledger_path) == (1, Decimal("45.23"))


def test_a_different_day_amount_or_note_is_another_entry(ledger_path: Path):
    base = ["record", "--provider", "openai", "--amount", "45.23", "--source", "subscription", "--ledger",
            f"sqlite://{ledger_path}"]  # fmt: skip
    for extra in ([], ["--date", "2026-01-29"], ["--note", "second seat"], ["--amount", "1"]):
        assert CliRunner().invoke(main, [*base, *extra]).exit_code == 0
    assert _ledger_total(ledger_path) == (4, Decimal("45.23") * 3 + 1)


# -- item 20: an unknown provider is warned about -----------------------------------------------------------


def test_record_warns_about_an_unknown_provider_with_a_did_you_mean(ledger_path: Path):
    args = ["record", "--provider", "opneai", "--amount", "1", "--ledger", f"sqlite://{ledger_path}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "warning: unknown provider 'opneai' (did you mean 'openai'?)" in result.stderr
    assert "known: " in result.stderr and "anthropic" in result.stderr and "aws.bedrock" in result.stderr
    known = CliRunner().invoke(main, [*args[:2], "openai", *args[3:]])
    assert known.exit_code == 0 and "warning" not in known.stderr


# -- item 17: amounts and texts out of bounds, named by file, line and key ---------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1e13", "cost_usd must be at most"),  # an amount SQLite's integer sums cannot hold
        ('"1e13"', "cost_usd must be at most"),
        ('"1_000"', "cost_usd must be a number without underscores, got '1_000'"),
        ('"NaN"', "cost_usd must be a finite number"),
        ('"Infinity"', "cost_usd must be a finite number"),
        ("1e400", "cost_usd must be at most"),
        ("1e-400", "cost_usd must have at most 18 decimal places"),
    ],
)
def test_an_amount_out_of_bounds_is_a_file_line_error(tmp_path: Path, value: str, problem: str):
    usage = tmp_path / "usage.jsonl"
    usage.write_text(_line(cost_usd=1) + "\n" + _line()[:-1] + f', "cost_usd": {value}}}\n')
    with pytest.raises(UsageFileError) as raised:
        parse_usage_lines(usage.read_text().splitlines(), path=str(usage))
    assert f"{usage}:2: {problem}" in str(raised.value)


def test_the_record_command_rejects_the_same_amounts(ledger_path: Path):
    for amount, problem in (("1_000", "without underscores"), ("1e400", "must be at most"), ("inf", "finite")):
        args = ["record", "--provider", "openai", "--amount", amount, "--ledger", f"sqlite://{ledger_path}"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and problem in result.output, result.output
    assert not ledger_path.exists() or _ledger_total(ledger_path) == (0, Decimal(0))


@pytest.mark.parametrize("key", ["service", "model", "source", "environment", "note"])
def test_an_overlong_text_is_a_file_line_error(key: str):
    line = json.loads(_line(cost_usd=1, model="gpt-4o"))
    line[key] = "x" * 5_000
    with pytest.raises(UsageFileError, match=rf"u.jsonl:1: {key} is longer than \d+ characters"):
        parse_usage_lines([json.dumps(line)], path="u.jsonl")


def test_a_token_count_beyond_the_bound_is_a_file_line_error():
    line = _line(tokens_input=2**63 - 1, model="gpt-4o-mini")
    with pytest.raises(UsageFileError, match=r"u.jsonl:1: tokens_input must be at most"):
        parse_usage_lines([line], path="u.jsonl")


@pytest.mark.parametrize("when", ["2262-04-11T23:47:16Z", "1970-01-01T00:00:00Z", "9999-12-31"])
def test_a_timestamp_outside_the_ledgers_years_is_a_file_line_error(when: str, ledger_path: Path):
    with pytest.raises(UsageFileError, match=r"u.jsonl:1: timestamp must be from 2000 to 2100"):
        parse_usage_lines([json.dumps({"timestamp": when, "service": "openai", "cost_usd": 1})], path="u.jsonl")
    args = ["record", "--provider", "openai", "--amount", "1", "--date", when, "--ledger", f"sqlite://{ledger_path}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "date must be from 2000 to 2100" in result.output, result.output


# -- item 14: a line nested 5,000 deep ----------------------------------------------------------------------


def test_deeply_nested_json_is_a_file_line_error_not_a_traceback(tmp_path: Path, ledger_path: Path):
    usage = tmp_path / "usage.jsonl"
    usage.write_text(_line(cost_usd=1) + "\n" + "[" * 5000 + "]" * 5000 + "\n" + '{"a":' * 5000 + "1" + "}" * 5000)
    result = CliRunner().invoke(main, ["import", str(usage), "--ledger", f"sqlite://{ledger_path}"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"{usage}:2: nested too deeply" in result.output and f"{usage}:3: nested too deeply" in result.output
    assert "Traceback" not in result.output and "nothing was imported" in result.output


def test_an_overlong_line_is_a_file_line_error():
    with pytest.raises(UsageFileError, match=r"u.jsonl:1: the line is longer than"):
        parse_usage_lines([_line(cost_usd=1, note="n" * 2_000_000)], path="u.jsonl")


# -- item 8: batches, a failure partway, progress -----------------------------------------------------------


def test_a_ledger_failing_partway_says_how_far_the_import_got_and_a_rerun_completes_it(tmp_path: Path):
    usage = _usage_file(tmp_path / "usage.jsonl", 1000)
    db = tmp_path / "usage.db"
    store = SQLiteStore(db, busy_timeout_s=0.05, write_attempts=2, backoff_s=0.01)
    blocker = sqlite3.connect(db, isolation_level=None)
    progress: list[tuple[int, int]] = []

    def lock_after_300(done: int, total: int) -> None:
        progress.append((done, total))
        if done == 300:  # another process takes the write lock: the ledger is unavailable from now on
            blocker.execute("BEGIN EXCLUSIVE")

    with pytest.raises(ImportInterrupted) as raised:
        import_usage_file(store, usage, batch_size=100, on_progress=lock_after_300)
    message = str(raised.value)
    assert message.startswith(f"{usage}: stopped after 300 of 1000 records (300 new, 0 already recorded)")
    assert "the ledger is unavailable" in message and "database is locked" in message
    assert "re-running the same import is safe" in message
    assert progress == [(100, 1000), (200, 1000), (300, 1000)]
    assert (raised.value.done, raised.value.new, raised.value.total) == (300, 300, 1000)
    blocker.execute("ROLLBACK")
    blocker.close()

    again = import_usage_file(store, usage, batch_size=100)
    assert (again.new, again.already_recorded) == (700, 300)
    store.close()
    assert _ledger_total(db) == (1000, sum((Decimal(f"0.{n:04d}") for n in range(1, 1001)), Decimal(0)))


def test_import_shows_progress_on_stderr_when_asked(tmp_path: Path, ledger_path: Path):
    usage = _usage_file(tmp_path / "usage.jsonl", 250)
    args = ["import", str(usage), "--ledger", f"sqlite://{ledger_path}"]
    quiet = CliRunner().invoke(main, args)  # not a terminal: no progress unless asked
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == f"{usage}: 250 new, 0 already recorded\n"
    shown = CliRunner().invoke(main, [*args, "--progress"])
    assert shown.exit_code == 0, shown.output
    assert "250/250" in shown.stderr and shown.stdout == f"{usage}: 0 new, 250 already recorded\n"


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--provider", "p" * 500, "provider has 500 characters; at most 200"),
        ("--model", "m" * 500, "request_model has 500 characters; at most 200"),
        ("--note", "n" * 5000, "note has 5000 characters; at most 2000"),
        ("--environment", "e" * 500, "environment has 500 characters; at most 200"),
    ],
)
@pytest.mark.parametrize("source", ["subscription", "dashboard"])
def test_the_record_command_bounds_its_texts(ledger_path: Path, option: str, value: str, problem: str, source: str):
    if source == "dashboard":  # a billed figure's fields: `model`, not `request_model`
        problem = problem.replace("request_model", "model")
    args = ["record", "--provider", "openai", "--amount", "1", "--source", source, option, value, "--ledger",
            f"sqlite://{ledger_path}"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and problem in result.output, result.output


def test_every_bad_line_is_reported_at_once_whatever_the_bound_broken():
    lines = [
        _line(cost_usd=1)[:-1] + ', "note": "a\\u0000b"}',  # a NUL: the ledger's text bound
        _line()[:-1] + ', "service": "o\\ud800", "cost_usd": 1}',  # a lone surrogate
        _line(cost_usd=1),
        _line()[:-1] + ', "cost_usd": 1e9999999999999999999999999}',  # beyond what Decimal holds
    ]
    with pytest.raises(UsageFileError) as raised:
        parse_usage_lines(lines, path="u.jsonl")
    assert str(raised.value).splitlines() == [
        "u.jsonl:1: note contains a NUL character",
        "u.jsonl:2: provider is not valid Unicode text (a lone surrogate)",
        "u.jsonl:4: a number beyond every bound of a usage line: '1e9999999999999999999999999'",
        "nothing was imported",
    ]
