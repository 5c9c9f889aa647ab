"""`otel-ai-cost ledger prune` as a user runs it: a dry run by default that says what would go (records, days, exact
money) and what stays, `--yes` to delete, reports that still add up and say so, a re-import that counts nothing
twice, clear usage errors (exit 2), Ctrl-C that deletes nothing (exit 130)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otel_ai_cost.cli import main
from otel_ai_cost.cli.progress import ProgressReporter
from otel_ai_cost.ledger.retention import DEFAULT_RETENTION
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
AGES = (1, 50, 89, 90, 91, 120, 300, 399, 400, 401, 500)  # days before today, one call each
KEPT = (
    "Kept: the daily rollup and the running totals, so `report` by day, month, environment, service, provider, "
    "model, operation, operation type or team over these days, and the running totals, still add up exactly.\n"
    "Gone for these days: what needs the records themselves (`jobs show`, a job, batch, CI run or trace id, "
    "`report --by` a field the rollup does not keep, such as cost_source, the catalog USD column); `report` says so.\n"
)


def today() -> date:
    return datetime.now(timezone.utc).date()


def ago(days: int) -> date:
    return today() - timedelta(days=days)


def usage_file(path: Path) -> Path:
    """One seed line per age in AGES, at noon UTC, costing 0.001 USD times the age plus a millionth."""
    lines = [
        json.dumps({"timestamp": f"{ago(age)}T12:00:00Z", "service": "openai", "cost_usd": f"{age / 1000}000001"})
        for age in AGES
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ledger(tmp_path: Path) -> str:
    """A SQLite ledger with AGES's calls in production and in staging, imported as a user does."""
    url = f"sqlite://{tmp_path / 'usage.db'}"
    usage = usage_file(tmp_path / "usage.jsonl")
    for environment in ("production", "staging"):
        result = run("import", str(usage), "-e", environment, "--ledger", url)
        assert result.stdout == f"{usage}: {len(AGES)} new, 0 already recorded\n", result.output
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def money(*ages: int) -> str:
    return format(sum((Decimal(f"{age / 1000}000001") for age in ages), Decimal(0)), "f")


def report(ledger: str, *options: str) -> Result:
    return run("report", "--days", "600", "--format", "csv", "--ledger", ledger, *options)


def test_a_dry_run_says_what_would_go_and_deletes_nothing(ledger: str):
    result = run("ledger", "prune", "--environment", "staging", "--older-than", "90d", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    old = [age for age in AGES if age > 90]
    assert result.stdout == (
        "ledger prune: dry run, nothing deleted (add --yes to delete)\n"
        f"staging: would delete {len(old)} records of {len(old)} UTC days ({ago(500)} .. {ago(91)}), "
        f"{money(*old)} USD: the UTC days before {ago(90)} (older than 90d)\n"
        f"  records of staging dated {ago(91)} or earlier written again will be refused (counted as duplicates): "
        "a replay never counts twice\n" + KEPT
    )
    assert result.stderr == ""
    assert _records(ledger, "staging") == len(AGES)


def test_yes_prunes_and_reports_still_add_up_and_say_so(ledger: str, tmp_path: Path):
    by_day = report(ledger, "--by", "day,environment,provider,model")
    totals = report(ledger, "--by", "environment", "-e", "staging")
    assert by_day.exit_code == 0 and by_day.stderr == ""

    result = run("ledger", "prune", "-e", "staging", "--older-than", "90d", "--yes", "--ledger", ledger)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"staging: deleted 7 records of 7 UTC days ({ago(500)} .. {ago(91)}), ")
    assert "written again are now refused" in result.stdout and result.stdout.endswith(KEPT)
    assert _records(ledger, "staging") == 4 and _records(ledger, "production") == len(AGES)

    note = (
        f"note: records of staging dated {ago(91)} or earlier were pruned (otel-ai-cost ledger prune); calls, cost "
        "and tokens of those days come from the daily rollup and are complete (a catalog USD column counts the kept "
        "records only)\n"
    )
    after = report(ledger, "--by", "day,environment,provider,model")
    assert (after.exit_code, after.stdout, after.stderr) == (0, by_day.stdout, note)
    assert report(ledger, "--by", "environment", "-e", "staging").stdout == totals.stdout
    by_record = report(ledger, "--by", "cost_source", "-e", "staging")
    assert by_record.stderr.startswith(f"warning: records of staging dated {ago(91)} or earlier were pruned")
    assert "this report reads the records themselves, so it misses those days' calls" in by_record.stderr

    usage = tmp_path / "usage.jsonl"  # the same file imported again: nothing is counted twice
    again = run("import", str(usage), "-e", "staging", "--ledger", ledger)
    assert again.stdout == f"{usage}: 0 new, {len(AGES)} already recorded\n", again.output
    assert report(ledger, "--by", "day,environment,provider,model").stdout == by_day.stdout

    nothing = run("ledger", "prune", "-e", "staging", "--older-than", "90d", "--yes", "--ledger", ledger)
    assert nothing.stdout == f"staging: no record of the UTC days before {ago(90)} (older than 90d): nothing to prune\n"


def test_all_environments_take_their_days_from_ttl_days(ledger: str):
    dry = run("ledger", "prune", "--all-environments", "--ledger", ledger)
    assert dry.exit_code == 0, dry.output
    lines = dry.stdout.splitlines()
    assert lines[1].startswith("production: would delete 2 records of 2 UTC days")  # production:400: 401, 500
    assert lines[1].endswith(f"the UTC days before {ago(400)} (older than 400d, from --ttl-days)")
    assert lines[3].startswith("staging: would delete 7 records")  # *:90

    custom = run("ledger", "prune", "--all-environments", "--ttl-days", "production:0,*:300", "--yes", "--ledger",
                 ledger)  # fmt: skip
    assert custom.exit_code == 0, custom.output
    assert custom.stdout.startswith(
        "production: kept for ever by --ttl-days (production: never expire; other environments: 300 days); "
        "nothing to prune\nstaging: deleted 4 records of 4 UTC days"  # 399, 400, 401, 500
    )
    assert (_records(ledger, "production"), _records(ledger, "staging")) == (len(AGES), len(AGES) - 4)
    assert f"# each by --ttl-days (default {DEFAULT_RETENTION})" in OPERATIONS_DOC.read_text()  # the docs say so


@pytest.mark.parametrize(
    ("older_than", "message"),
    [
        ("90x", "expected a number of whole days such as 90d, got '90x'"),
        ("90", "expected a number of whole days such as 90d, got '90'"),
        ("0d", "expected at least 1d, got '0d'"),
        ("99999d", "--older-than: 99999 days is more than 100 years"),
    ],
)
def test_a_bad_older_than_is_a_clear_usage_error(ledger: str, older_than: str, message: str):
    result = run("ledger", "prune", "-e", "staging", "--older-than", older_than, "--yes", "--ledger", ledger)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"Error: Invalid value for '--older-than': {message}" in result.stderr
    assert _records(ledger, "staging") == len(AGES)


def test_other_usage_errors_and_what_cannot_be_pruned(ledger: str, tmp_path: Path):
    neither = run("ledger", "prune", "--ledger", ledger)
    assert neither.exit_code == 2 and "give --environment E (one or more) or --all-environments" in neither.stderr
    typo = run("ledger", "prune", "-e", "stagin", "--ledger", ledger)
    assert typo.exit_code == 2 and "no environment 'stagin' in the ledger" in typo.stderr
    assert "Did you mean 'staging'?" in typo.stderr
    bad_ttl = run("ledger", "prune", "-e", "staging", "--ttl-days", "production=400", "--ledger", ledger)
    assert bad_ttl.exit_code == 2 and "expected ENVIRONMENT:DAYS or *:DAYS" in bad_ttl.stderr
    dynamodb = run("ledger", "prune", "-e", "staging", "--ledger", "dynamodb://ai-usage?region=eu-west-1")
    assert dynamodb.exit_code == 1
    assert "ledger prune is for a SQLite ledger" in dynamodb.stderr and "ttl_days=" in dynamodb.stderr
    missing = run("ledger", "prune", "-e", "staging", "--ledger", f"sqlite://{tmp_path / 'none.db'}")
    assert missing.exit_code == 1 and not (tmp_path / "none.db").exists()  # never created


def test_ctrl_c_midway_deletes_nothing(ledger: str, monkeypatch: pytest.MonkeyPatch):
    before = report(ledger, "--by", "day,environment").stdout
    draw = ProgressReporter.__call__

    def interrupting(self: ProgressReporter, done: int, total: int | None = None) -> None:
        draw(self, done, total)
        if done > 0:  # once records were deleted, inside the transaction
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressReporter, "__call__", interrupting)
    result = run("ledger", "prune", "-e", "staging", "--older-than", "90d", "--yes", "--ledger", ledger)
    assert result.exit_code == 130, result.output
    assert result.stdout == ""
    assert result.stderr == "ledger prune: interrupted; nothing was deleted (one transaction, rolled back)\n"
    assert _records(ledger, "staging") == len(AGES)
    assert report(ledger, "--by", "day,environment").stdout == before


def test_the_installed_command_prunes_with_a_progress_bar(ledger: str):
    args = [sys.executable, "-m", "otel_ai_cost", "ledger", "prune", "-e", "production", "--yes", "--progress",
            "--ledger", ledger]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("production: deleted 2 records of 2 UTC days")
    assert "pruning records" in done.stderr and "2/2" in done.stderr
    assert _records(ledger, "production") == len(AGES) - 2


def _records(ledger: str, environment: str) -> int:
    with SQLiteStore(ledger.removeprefix("sqlite://")) as store:
        return len(list(store.query(UsageQuery(environment=environment))))
