"""A filter that matches nothing because of a typo says so, lists what the ledger knows, and suggests the closest.

`report -e prod` (and `jobs show -e prod`) on a ledger of `production` and `staging` is an error naming the known
environments, never a quiet "no calls recorded". A provider, model, service or team that has no call in the
report's period gets the same hint (from the period's own values; the report itself stays empty and exits 0).
Real SQLite ledgers through the CLI (click's CliRunner).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otel_ai_cost.cli import main
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

PERIOD = ["--since", "2026-01-30", "--until", "2026-01-30"]


@pytest.fixture
def ledger(ledger_path: Path, make_record) -> str:
    with SQLiteStore(ledger_path) as store:
        staging = {"environment": "staging", "provider": "anthropic", "request_model": "claude-haiku-4-5"}
        store.write(
            [
                make_record(amount=Decimal("1"), job_id="job-42", team="search"),
                make_record(amount=Decimal("2"), response_model="", **staging),
            ]
        )
    return f"sqlite://{ledger_path}"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_report_of_an_unknown_environment_lists_the_known_ones(ledger: str, fmt: str):
    result = _run("report", *PERIOD, "-e", "prod", "--format", fmt, "--ledger", ledger)
    assert result.exit_code == 2, result.output
    assert "no environment 'prod' in the ledger" in result.output
    assert "known: production, staging" in result.output and "Did you mean 'production'?" in result.output
    assert "no calls recorded" not in result.output


def test_an_unknown_environment_far_from_every_known_one_gets_no_suggestion(ledger: str):
    result = _run("report", *PERIOD, "-e", "qa", "--ledger", ledger)
    assert result.exit_code == 2 and "known: production, staging" in result.output
    assert "did you mean" not in result.output.lower()


def test_a_known_environment_without_calls_in_the_period_is_an_empty_report(ledger: str):
    result = _run("report", "--since", "2020-01-01", "--until", "2020-01-01", "-e", "staging", "--ledger", ledger)
    assert result.exit_code == 0 and "no calls recorded for this selection" in result.output
    assert "known:" not in result.output and "did you mean" not in result.output.lower()


def test_jobs_show_in_an_unknown_environment_lists_the_known_ones(ledger: str):
    result = _run("jobs", "show", "job-42", "-e", "prod", "--ledger", ledger)
    assert result.exit_code == 2, result.output
    assert "no environment 'prod' in the ledger" in result.output and "Did you mean 'production'?" in result.output
    assert _run("jobs", "show", "job-42", "-e", "production", "--ledger", ledger).exit_code == 0


@pytest.mark.parametrize(
    ("option", "typo", "message"),
    [
        ("--provider", "opneai", "no call of provider 'opneai' in this selection; there are: anthropic, openai. "
                                 "Did you mean 'openai'?"),
        ("--model", "gpt-4o-mini-2024-07-1", "Did you mean 'gpt-4o-mini-2024-07-18'?"),
        ("--team", "serach", "no call of team 'serach' in this selection; there are: (none), search. "
                             "Did you mean 'search'?"),
        ("--service", "reciepts", "Did you mean 'receipts'?"),
    ],
)  # fmt: skip
def test_report_filters_that_match_nothing_say_what_there_is(ledger: str, option: str, typo: str, message: str):
    result = _run("report", *PERIOD, option, typo, "--ledger", ledger)
    assert result.exit_code == 0, result.output
    assert "no calls recorded for this selection" in result.output and message in result.output
    json_result = CliRunner().invoke(main, ["report", *PERIOD, option, typo, "--format", "json", "--ledger", ledger])
    assert json.loads(json_result.stdout)["rows"] == []  # the hint goes to stderr: stdout stays JSON
    assert message in json_result.stderr


def test_a_filter_that_matches_in_the_period_gets_no_hint(ledger: str):
    # Both values exist in the period, only not together: nothing to suggest.
    result = _run("report", *PERIOD, "--provider", "anthropic", "--team", "search", "--ledger", ledger)
    assert result.exit_code == 0 and "no calls recorded for this selection" in result.output
    assert "did you mean" not in result.output.lower() and "there are" not in result.output
