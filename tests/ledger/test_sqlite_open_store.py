"""Store selection by one URL-like setting: OTEL_AI_COST_LEDGER / --ledger."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from otel_ai_cost.ledger.open_store import (
    LEDGER_ENV,
    LedgerConfigError,
    LedgerDisabled,
    configured_url,
    default_ledger_path,
    is_disabled,
    open_store,
    sqlite_path,
)
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

DYNAMODB_MODULE = "otel_ai_cost.ledger.dynamodb_store"


def test_default_location_follows_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_ledger_path() == tmp_path / "data" / "otel-ai-cost" / "usage.db"
    monkeypatch.delenv(LEDGER_ENV)
    assert configured_url() == f"sqlite://{tmp_path}/data/otel-ai-cost/usage.db"
    store = open_store()
    assert isinstance(store, SQLiteStore) and store.path == default_ledger_path() and store.path.is_file()
    store.close()


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"])  # unset, empty or not absolute: ignored (XDG spec)
def test_default_location_without_a_usable_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg):
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME")
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    assert default_ledger_path() == tmp_path / ".local" / "share" / "otel-ai-cost" / "usage.db"


def test_the_variable_names_the_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{tmp_path}/x/ledger.db")
    with open_store() as store:
        assert store.path == tmp_path / "x" / "ledger.db"
    monkeypatch.setenv(LEDGER_ENV, "  ")
    assert configured_url().endswith("/otel-ai-cost/usage.db")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/lib/usage.db", "/var/lib/usage.db"),  # three slashes: absolute
        ("sqlite:////var/lib/usage.db", "/var/lib/usage.db"),  # the SQLAlchemy spelling of absolute
        ("sqlite://usage.db", "usage.db"),  # relative to the current directory
        ("sqlite://data/usage.db", "data/usage.db"),
        ("SQLITE:///x.db", "/x.db"),
    ],
)
def test_sqlite_urls(url: str, expected: str):
    assert sqlite_path(url) == Path(expected)


def test_sqlite_url_with_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sqlite_path("sqlite://~/l/usage.db") == tmp_path / "l" / "usage.db"


def test_relative_sqlite_url_opens_in_the_current_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    open_store("sqlite://sub/usage.db").close()
    assert (tmp_path / "sub" / "usage.db").is_file()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sqlite://", "names no file"),
        ("sqlite:///tmp/dir/", "names a directory"),
        ("sqlite:///tmp/x.db?mode=ro", "takes no query"),
        ("usage.db", "is not a ledger URL"),
        ("/tmp/usage.db", "is not a ledger URL"),
        ("postgres://db/ledger", "is not a ledger URL"),
        ("dynamdb://table", "is not a ledger URL"),
    ],
)
def test_bad_urls_name_the_variable_and_what_is_accepted(monkeypatch: pytest.MonkeyPatch, url: str, problem: str):
    monkeypatch.setenv(LEDGER_ENV, url)
    with pytest.raises(LedgerConfigError, match=problem) as raised:
        open_store()
    assert f"{LEDGER_ENV}={url!r}" in str(raised.value)
    with pytest.raises(LedgerConfigError, match="--ledger"):
        open_store(url, origin="--ledger")


def test_none_disables_the_ledger(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(LEDGER_ENV, "None")
    assert is_disabled()
    with pytest.raises(LedgerDisabled, match=f"{LEDGER_ENV}=none"):
        open_store()
    monkeypatch.setenv(LEDGER_ENV, "sqlite:///x.db")
    assert not is_disabled() and is_disabled("none")


def test_dynamodb_urls_go_to_the_dynamodb_store_imported_lazily(monkeypatch: pytest.MonkeyPatch):
    seen = []

    class FakeDynamoDBStore:
        @classmethod
        def from_url(cls, url: str) -> str:
            seen.append(url)
            if "bad" in url:
                raise ValueError("table name 'bad' is too short")
            return "a dynamodb store"

    fake = types.ModuleType(DYNAMODB_MODULE)
    fake.DynamoDBStore = FakeDynamoDBStore  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, DYNAMODB_MODULE, fake)
    url = "dynamodb://ai-usage?region=eu-west-1&endpoint_url=http://127.0.0.1:8000"
    assert open_store(url) == "a dynamodb store"
    assert seen == [url]
    monkeypatch.setenv(LEDGER_ENV, "dynamodb://bad")
    with pytest.raises(LedgerConfigError, match=f"{LEDGER_ENV}='dynamodb://bad': table name 'bad' is too short"):
        open_store()


def test_dynamodb_without_its_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, DYNAMODB_MODULE, None)  # import -> ImportError (as without boto3)
    with pytest.raises(LedgerConfigError, match="needs boto3"):
        open_store("dynamodb://ai-usage")


def test_the_embedded_default_does_not_import_the_dynamodb_store(tmp_path: Path):
    import subprocess

    code = (
        "import sys; from otel_ai_cost.ledger.open_store import open_store; "
        f"open_store('sqlite://{tmp_path}/u.db').close(); "
        f"print({DYNAMODB_MODULE!r} in sys.modules, 'boto3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
