"""A read never creates a ledger: a mistyped ledger URL is reported as missing, and nothing appears on disk.

`report`, `jobs show`, `budgets check` (and `open_store(url, create=False)`, which they use) say the ledger does not
exist, naming the file or the table, and exit non-zero; writers (`record`, `ledger init`) still create it. SQLite
through real files in `tmp_path`; DynamoDB through moto in server mode on loopback.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from dynamodb_server import REGION, LoopbackDynamoDB

from otel_ai_cost.cli import main
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.open_store import LEDGER_ENV, LedgerConfigError, LedgerNotFound, open_store
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

BUDGETS_FILE = Path(__file__).resolve().parents[2] / "config" / "budgets.yaml"  # the project's own budgets
READ_COMMANDS = [
    (["report"], 1),
    (["report", "--format", "json"], 1),
    (["jobs", "show", "job-42"], 1),
    (["budgets", "check", "--budgets", str(BUDGETS_FILE)], 2),  # budgets' exit code for a broken ledger
]


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


# -- SQLite ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "exit_code"), READ_COMMANDS)
def test_a_read_of_a_mistyped_sqlite_path_creates_nothing_and_says_so(
    tmp_path: Path, command: list[str], exit_code: int
):
    typo = tmp_path / "typo" / "x.db"
    result = _run(*command, "--ledger", f"sqlite://{typo}")
    assert result.exit_code == exit_code, result.output
    assert f"no ledger at {typo}: the file does not exist" in result.output
    assert "no calls recorded" not in result.output
    assert not typo.exists() and not typo.parent.exists()


def test_a_read_of_a_missing_file_in_an_existing_directory_creates_nothing(tmp_path: Path):
    missing = tmp_path / "usage-typo.db"
    result = _run("report", "--ledger", f"sqlite://{missing}")
    assert result.exit_code == 1 and f"no ledger at {missing}" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_read_of_the_default_ledger_before_anything_was_recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv(LEDGER_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    result = _run("report")
    default = tmp_path / "data" / "otel-ai-cost" / "usage.db"
    assert result.exit_code == 1 and f"no ledger at {default}" in result.output
    assert "the default ledger" in result.output and LEDGER_ENV in result.output
    assert not (tmp_path / "data").exists()


def test_a_read_never_turns_another_file_into_a_ledger(tmp_path: Path):
    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    conn.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (text, other, empty):
        before = path.read_bytes()
        result = _run("report", "--ledger", f"sqlite://{path}")
        assert result.exit_code == 1 and f"{path} is not an otel-ai-cost ledger" in result.output, result.output
        assert path.read_bytes() == before  # no ledger tables added to someone else's database
    result = _run("report", "--ledger", f"sqlite://{tmp_path}/notes.db/x.db")
    assert result.exit_code == 1 and "no ledger at" in result.output


def test_a_read_of_an_existing_ledger_works(ledger_path: Path, make_record):
    with SQLiteStore(ledger_path) as store:
        store.write([make_record(job_id="job-42", amount=Decimal("0.5"))])
    result = _run("jobs", "show", "job-42", "--ledger", f"sqlite://{ledger_path}")
    assert result.exit_code == 0 and "job total: 0.50 USD over 1 call(s)" in result.output
    with open_store(f"sqlite://{ledger_path}", create=False) as store:
        assert len(list(store.query(UsageQuery()))) == 1


def test_writers_still_create_the_ledger(tmp_path: Path):
    recorded = tmp_path / "new" / "usage.db"
    result = _run("record", "--provider", "openai", "--amount", "1.25", "--ledger", f"sqlite://{recorded}")
    assert result.exit_code == 0, result.output
    assert recorded.is_file()
    initialised = tmp_path / "init" / "usage.db"
    assert _run("ledger", "init", "--ledger", f"sqlite://{initialised}").exit_code == 0
    assert initialised.is_file()
    with open_store(f"sqlite://{tmp_path}/default/usage.db") as store:  # open_store creates by default
        assert store.path.is_file()


def test_open_store_read_only_is_a_config_error_naming_the_origin(tmp_path: Path):
    with pytest.raises(LedgerNotFound, match=r"--ledger=") as raised:
        open_store(f"sqlite://{tmp_path}/x.db", origin="--ledger", create=False)
    assert isinstance(raised.value, LedgerConfigError)
    assert not (tmp_path / "x.db").exists()


# -- DynamoDB -------------------------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


def _tables(server: LoopbackDynamoDB) -> list[str]:
    return server.client().list_tables()["TableNames"]


@pytest.mark.parametrize(("command", "exit_code"), READ_COMMANDS)
def test_a_read_of_a_missing_dynamodb_table_creates_nothing_and_says_so(
    server: LoopbackDynamoDB, command: list[str], exit_code: int
):
    url = f"dynamodb://ledger-typo?region={REGION}&endpoint_url={server.endpoint_url}"
    result = _run(*command, "--ledger", url)
    assert result.exit_code == exit_code, result.output
    assert "no ledger table ledger-typo" in result.output and "does not exist" in result.output
    assert "otel-ai-cost ledger init" in result.output
    assert "ledger-typo" not in _tables(server)


def test_a_read_of_an_existing_dynamodb_table_works(server: LoopbackDynamoDB, make_record):
    url = f"dynamodb://ledger-read?region={REGION}&endpoint_url={server.endpoint_url}"
    store = DynamoDBStore.from_url(url)
    store.ensure_table()
    store.write([make_record(job_id="job-42", amount=Decimal("0.5"))])
    store.close()
    result = _run("jobs", "show", "job-42", "--ledger", url)
    assert result.exit_code == 0 and "job total: 0.50 USD over 1 call(s)" in result.output, result.output


def test_an_unknown_environment_on_dynamodb_lists_the_registered_ones(server: LoopbackDynamoDB, make_record):
    # Not about creation, but about the same read: DynamoDB's environments come from its registry item.
    url = f"dynamodb://ledger-environments?region={REGION}&endpoint_url={server.endpoint_url}"
    store = DynamoDBStore.from_url(url)
    store.ensure_table()
    store.write([make_record(amount=Decimal("0.5")), make_record(amount=Decimal("1"), environment="staging")])
    store.close()
    result = _run("report", "-e", "prod", "--ledger", url)
    assert result.exit_code == 2, result.output
    assert "known: production, staging. Did you mean 'production'?" in result.output
    assert f"in the ledger {url};" in result.output and "Store(" not in result.output  # the URL, never a repr
