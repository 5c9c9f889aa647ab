"""Manual entries and usage.jsonl imports: content-derived identity, exact amounts, all-or-nothing validation."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from otel_ai_cost.cli import main
from otel_ai_cost.contract import PricingStatus, RecordSource
from otel_ai_cost.ledger.manual import (
    UsageFileError,
    content_identity,
    import_usage_file,
    manual_record,
    parse_usage_lines,
)
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import BilledQuery, UsageQuery

# The seeds' line, and a middleware line with usage but no cost.
SEED_LINE = '{"timestamp":"2026-01-30T14:00:00Z","service":"openai","cost_usd":45.23,"source":"dashboard"}'
USAGE_LINE = '{"timestamp":"2026-01-30T15:00:00Z","service":"openai","tokens_input":1000,"tokens_output":200,"model":"gpt-4o-mini"}'  # noqa: E501


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# -- manual entries -------------------------------------------------------------------------------------------


def test_a_manual_entry_is_marked_and_exact():
    entry = manual_record(provider="openai", amount="45.23", when="2026-01-30", note="January dashboard")
    assert (entry.record_source, entry.cost_source, entry.pricing_status) == ("manual", "dashboard", "priced")
    assert entry.amount == Decimal("45.23") and entry.timestamp == datetime(2026, 1, 30, tzinfo=timezone.utc)
    assert (entry.environment, entry.service, entry.note) == ("development", "manual", "January dashboard")
    assert len(entry.trace_id) == 32 and len(entry.span_id) == 16 and int(entry.trace_id, 16)


def test_identity_derives_from_content():
    a = manual_record(provider="openai", amount="45.230", when=date(2026, 1, 30))
    assert a.key == manual_record(provider="openai", amount=Decimal("45.23"), when="2026-01-30T00:00:00Z").key
    assert a.key != manual_record(provider="openai", amount="45.24", when="2026-01-30").key
    assert a.key != manual_record(provider="openai", amount="45.23", when="2026-01-31").key
    assert a.key != manual_record(provider="openai", amount="45.23", when="2026-01-30", source="invoice").key
    assert a.key != manual_record(provider="openai", amount="45.23", when="2026-01-30", environment="prod").key
    assert content_identity(a) == a.key


def test_the_environment_defaults_to_the_current_one(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ENVIRONMENT", "production")
    assert manual_record(provider="openai", amount="1", when="2026-01-30").environment == "production"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"amount": "-1"}, "non-negative"),
        ({"amount": "abc"}, "must be a number"),
        ({"amount": "NaN"}, "finite"),
        ({"amount": 0.1}, "exact decimal"),
        ({"provider": " "}, "provider must not be empty"),
        ({"source": "email"}, "dashboard, invoice, subscription"),
        ({"when": "2026-01-30T14:00:00"}, "timezone"),
        ({"when": "yesterday"}, "ISO 8601"),
    ],
)
def test_bad_manual_entries(kwargs: dict, problem: str):
    with pytest.raises(ValueError, match=problem):
        manual_record(**{"provider": "openai", "amount": "1", "when": "2026-01-30", **kwargs})


# -- usage.jsonl ----------------------------------------------------------------------------------------------


def test_seed_lines_are_read_exactly():
    (seed, usage) = parse_usage_lines([SEED_LINE, "", USAGE_LINE])
    assert (seed.provider, seed.amount, seed.cost_source, seed.record_source) == (
        "openai", Decimal("45.23"), "dashboard", RecordSource.IMPORT.value)  # fmt: skip
    assert seed.timestamp == datetime(2026, 1, 30, 14, tzinfo=timezone.utc)
    # usage without a cost is priced as the instrumentation would: 1000 * 0.15 + 200 * 0.60 per 1M
    assert (usage.amount, usage.pricing_status, usage.cost_source) == (Decimal("0.00027"), "priced", "local")
    assert (usage.input_tokens, usage.output_tokens, usage.request_model) == (1000, 200, "gpt-4o-mini")


def test_usage_of_a_model_without_price_is_unpriced_not_free():
    (line,) = parse_usage_lines(['{"timestamp":"2026-01-30","service":"acme","tokens_input":5,"model":"acme-7b"}'])
    assert (line.amount, line.pricing_status) == (None, PricingStatus.UNPRICED.value)


def test_importing_the_same_file_twice_changes_nothing(tmp_path: Path, sqlite_store: SQLiteStore):
    usage = _write(tmp_path / "usage.jsonl", SEED_LINE, USAGE_LINE)
    first = import_usage_file(sqlite_store, usage)
    totals = sqlite_store.totals("development", "2026-01")
    second = import_usage_file(sqlite_store, usage)
    assert ((first.new, first.already_recorded), (second.new, second.already_recorded)) == ((1, 0), (0, 1))
    assert first.billed == second.billed == 1  # the dashboard figure: the billed side, not spend
    assert sqlite_store.totals("development", "2026-01") == totals
    assert totals.amount == Decimal("0.00027") and totals.calls == 1
    (billed,) = sqlite_store.billed_lines(BilledQuery(date(2026, 1, 1), date(2026, 1, 31)))
    assert (billed.provider, billed.day, billed.source) == ("openai", date(2026, 1, 30), "dashboard")
    assert billed.amount == Decimal("45.23")
    # A later file sharing a line with the first (an archive, a re-export): only the new line counts.
    later = _write(tmp_path / "later.jsonl", USAGE_LINE, USAGE_LINE.replace("15:00", "18:00"))
    assert import_usage_file(sqlite_store, later).new == 1
    # The same day's dashboard figure again, spelt differently: the one figure, unchanged.
    again = _write(tmp_path / "again.jsonl", SEED_LINE.replace("45.23", "45.230"), SEED_LINE.replace("14:00", "18:00"))
    import_usage_file(sqlite_store, again)
    assert len(sqlite_store.billed_lines(BilledQuery(date(2026, 1, 1), date(2026, 1, 31)))) == 1


def test_a_bad_line_fails_the_whole_file_naming_file_line_and_problem(tmp_path: Path, sqlite_store: SQLiteStore):
    usage = _write(
        tmp_path / "usage.jsonl",
        SEED_LINE,
        '{"timestamp":"2026-01-30T14:00:00Z","service":"openai","cost_usd":"lots"}',
        "",
        '{"timestamp":"2026-01-30T14:00:00Z","service":"openai","cost_usdd":1}',
        "not json",
        '{"service":"openai","cost_usd":1}',
    )
    with pytest.raises(UsageFileError) as raised:
        import_usage_file(sqlite_store, usage)
    message = str(raised.value)
    assert f"{usage}:2: cost_usd must be a number, got 'lots'" in message
    assert f"{usage}:4: unknown key(s) cost_usdd" in message
    assert f"{usage}:5: not valid JSON" in message
    assert f"{usage}:6: missing 'timestamp'" in message
    assert [line for line, _ in raised.value.problems] == [2, 4, 5, 6]
    assert message.endswith("nothing was imported")
    assert list(sqlite_store.query(UsageQuery())) == []  # not even the good first line


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"timestamp":"2026-01-30","cost_usd":1}', "missing 'service'"),
        ('{"timestamp":"2026-01-30","service":"","cost_usd":1}', "service must be a non-empty string"),
        ('{"timestamp":"2026-01-30","service":"o"}', "no 'cost_usd' and no token counts"),
        ('{"timestamp":"2026-01-30","service":"o","tokens_input":5}', "need a 'model'"),
        ('{"timestamp":"2026-01-30","service":"o","cost_usd":-0.5}', "non-negative"),
        ('{"timestamp":"2026-01-30","service":"o","cost_usd":true}', "exact decimal"),
        ('{"timestamp":"2026-01-30","service":"o","cost_usd":NaN}', "NaN is not a number"),
        ('{"timestamp":"2026-01-30","service":"o","cost_usd":1,"currency":"EUR"}', "currency must be USD"),
        ('{"timestamp":"2026-01-30","service":"o","tokens_input":1.5,"model":"m"}', "non-negative integer"),
        ('{"timestamp":"2026-01-30 14:00","service":"o","cost_usd":1}', "must include a timezone"),
        ('{"timestamp":1738245600,"service":"o","cost_usd":1}', "ISO 8601"),
    ],
)
def test_line_validation(line: str, problem: str):
    with pytest.raises(UsageFileError, match=problem):
        parse_usage_lines([line], path="u.jsonl")


# -- the commands ---------------------------------------------------------------------------------------------


def test_record_command(ledger_path: Path):
    args = ["record", "--provider", "anthropic", "--amount", "20.00", "--date", "2026-01-29", "--source", "invoice",
            "--note", "January invoice", "--ledger", f"sqlite://{ledger_path}"]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("recorded 20.00 USD billed, anthropic, 2026-01-29 (invoice)")
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.output.startswith("already recorded: 20.00 USD")
    corrected = CliRunner().invoke(main, [*args[:4], "21.50", *args[5:]])
    assert corrected.output.startswith("replaced 20.00 USD with 21.50 USD billed"), corrected.output
    with SQLiteStore(ledger_path) as store:
        assert list(store.query(UsageQuery())) == []  # a billed figure is not spend
        (line,) = store.billed_lines(BilledQuery(date(2026, 1, 29), date(2026, 1, 29)))
    assert (line.amount, line.note, line.source) == (Decimal("21.50"), "January invoice", "invoice")


def test_a_subscription_is_spend(ledger_path: Path):
    args = ["record", "--provider", "anthropic", "--amount", "20.00", "--date", "2026-01-29", "--source",
            "subscription", "--ledger", f"sqlite://{ledger_path}"]  # fmt: skip
    first = CliRunner().invoke(main, args)
    assert first.output.startswith("recorded 20.00 USD, anthropic, 2026-01-29, environment development (subscription)")
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and again.output.startswith("already recorded: 20.00 USD")
    with SQLiteStore(ledger_path) as store:
        (entry,) = store.query(UsageQuery())
    assert (entry.amount, entry.cost_source, entry.record_source) == (Decimal("20.00"), "subscription", "manual")


def test_record_command_rejects_a_bad_amount(ledger_path: Path):
    result = CliRunner().invoke(
        main, ["record", "--provider", "o", "--amount", "1,5", "--ledger", f"sqlite://{ledger_path}"]
    )
    assert result.exit_code == 2 and "amount must be a number, got '1,5'" in result.output


def test_import_command(tmp_path: Path, ledger_path: Path):
    usage = _write(tmp_path / "usage.jsonl", SEED_LINE, USAGE_LINE)
    ledger = f"sqlite://{ledger_path}"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["import", str(usage), "--ledger", ledger]).output
        == f"{usage}: 1 new, 0 already recorded, 1 billed figures (dashboard or invoice: compared by `reconcile`)\n"
    )
    assert (
        runner.invoke(main, ["import", str(usage), "--ledger", ledger]).output
        == f"{usage}: 0 new, 1 already recorded, 1 billed figures (dashboard or invoice: compared by `reconcile`)\n"
    )
    bad = _write(tmp_path / "bad.jsonl", SEED_LINE, "{")
    result = runner.invoke(main, ["import", str(bad), "--ledger", ledger])
    assert (
        result.exit_code == 1
        and f"{bad}:2: not valid JSON" in result.output
        and "nothing was imported" in result.output
    )


def test_import_command_environment_option(tmp_path: Path, ledger_path: Path):
    spend = SEED_LINE.replace("dashboard", "subscription")
    usage = _write(tmp_path / "usage.jsonl", spend, json.dumps({**json.loads(spend), "environment": "prod"}))
    result = CliRunner().invoke(main, ["import", str(usage), "-e", "staging", "--ledger", f"sqlite://{ledger_path}"])
    assert result.exit_code == 0, result.output
    with SQLiteStore(ledger_path) as store:
        assert sorted(r.environment for r in store.query(UsageQuery())) == ["prod", "staging"]
