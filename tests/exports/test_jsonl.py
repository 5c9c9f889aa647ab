"""`otel-ai-cost export jsonl`: a month of ledger records as JSON Lines, read back by `import` without loss and
without duplicates, written atomically, streamed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from otel_ai_cost.cli import main
from otel_ai_cost.contract import CostSource, Outcome, PricingStatus, RecordSource
from otel_ai_cost.exports.jsonl import archive_line, archive_name, export_month, month_days
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.manual import MAX_LINE_CHARS, import_usage_file
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

NOVEMBER = datetime(2026, 11, 1, tzinfo=timezone.utc)


def record(n: int, **overrides: Any) -> LedgerRecord:
    """Record `n` of November 2026, every field set to something other than its default."""
    values: dict[str, Any] = {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "timestamp": NOVEMBER + timedelta(hours=n, microseconds=n),
        "environment": "production",
        "service": "receipts",
        "provider": "anthropic",
        "request_model": "claude-sonnet-4",
        "response_model": "claude-sonnet-4-20250514",
        "operation": "chat",
        "operation_type": "code_review",
        "input_tokens": 1000 + n,
        "output_tokens": 200,
        "cache_read_input_tokens": 30,
        "cache_write_5m_input_tokens": 4,
        "cache_write_1h_input_tokens": 5,
        "reasoning_output_tokens": 6,
        "web_search_requests": 7,
        "amount": Decimal("0.004350"),  # the trailing zero is part of the figure as written
        "computed_amount": Decimal("0.00435"),
        "cost_source": CostSource.PROVIDER.value,
        "pricing_version": "2026-11-01",
        "pricing_tier": "batch",
        "duration_ms": 1234.567890123,
        "outcome": Outcome.SUCCESS.value,
        "job_id": "job-7",
        "batch_id": "batch-3",
        "team": "payments",
        "user_id": "u-1",
        "tags": {"feature": "refunds", "ticket": "É-42"},
        "cicd_pipeline_name": "ci",
        "cicd_run_id": "9876",
        "cicd_run_url": "https://github.com/acme/shop/actions/runs/9876",
        "cicd_task_name": "review",
        "vcs_repository_url": "https://github.com/acme/shop",
        "vcs_revision": "0123456789abcdef0123456789abcdef01234567",
        "vcs_ref_name": "main",
        "vcs_change_id": "42",
        "record_source": RecordSource.SPAN.value,
        "note": 'line one\nline two, "quoted", ünïcode',
    }
    values.update(overrides)
    return LedgerRecord(**values)


def the_month() -> list[LedgerRecord]:
    """November's records of every kind, and their neighbours in October and December."""
    return [
        record(1),
        record(2, amount=None, computed_amount=None, pricing_status=PricingStatus.UNPRICED.value),  # unknown cost
        record(3, amount=Decimal("0.000000000000000000000000000001"), computed_amount=None),  # 30 places
        record(4, environment="staging", tags={}, note=""),
        record(5, timestamp=NOVEMBER, outcome=Outcome.PARTIAL.value),  # the month's first instant
        record(6, timestamp=datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=timezone.utc)),  # and its last
        record(7, record_source=RecordSource.MANUAL.value, cost_source="subscription", service="manual"),
        record(8, record_source=RecordSource.IMPORT.value, cost_source="dashboard", service="manual"),
        record(9, timestamp=datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)),  # October
        record(10, timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc)),  # December
    ]


def stored(path: Path, query: UsageQuery | None = None) -> list[dict[str, Any]]:
    with SQLiteStore(path) as store:
        return [r.to_dict() for r in store.query(query or UsageQuery())]


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    with SQLiteStore(path) as store:
        store.write(the_month())
    return path


def test_a_month_archived_and_imported_into_a_new_ledger_is_the_same_records_field_for_field(
    ledger: Path, tmp_path: Path
):
    result = run(
        "export", "jsonl", "--month", "2026-11", "-o", f"{tmp_path}/history/", "--ledger", f"sqlite://{ledger}"
    )
    archive = tmp_path / "history" / "usage-2026-11.jsonl"
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"wrote 8 records of 2026-11 (every environment) to {archive}: "
        "0.026100000000000000000000000001 USD (a lower bound: 2 records of unknown cost)\n"
    )
    november = stored(ledger, UsageQuery(*month_days("2026-11")))
    lines = archive.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == november  # every field, oldest first
    amounts = {line["trace_id"]: line["amount"] for line in map(json.loads, lines)}
    assert (amounts[f"{1:032x}"], amounts[f"{2:032x}"]) == ("0.004350", None)  # as written; unpriced is no $0
    assert amounts[f"{3:032x}"] == "0.000000000000000000000000000001"

    fresh = tmp_path / "fresh.db"
    first = run("import", str(archive), "--ledger", f"sqlite://{fresh}")
    assert first.exit_code == 0 and first.stdout == f"{archive}: 8 new, 0 already recorded\n", first.output
    assert stored(fresh) == november  # ids, tokens, exact amounts, attribution, CI, tags, record_source, note
    again = run("import", str(archive), "--ledger", f"sqlite://{fresh}")
    assert again.stdout == f"{archive}: 0 new, 8 already recorded\n"
    assert stored(fresh) == november
    with SQLiteStore(fresh) as store:  # the running totals count each record once
        assert store.totals("production", "2026-11").calls == 7
        assert store.totals("staging", "2026-11").calls == 1


def test_importing_the_archive_into_the_ledger_it_came_from_changes_nothing(ledger: Path, tmp_path: Path):
    path = tmp_path / "november.jsonl"
    result = run("export", "jsonl", "--month", "2026-11", "-o", str(path), "--ledger", f"sqlite://{ledger}")
    assert result.exit_code == 0, result.output
    before = stored(ledger)
    with SQLiteStore(ledger) as store:
        totals = store.totals("production", "2026-11")
        result = import_usage_file(store, path)
        assert (result.new, result.already_recorded) == (0, 8)
        assert store.totals("production", "2026-11") == totals
    assert stored(ledger) == before


def test_one_environment_has_its_own_archive_name(ledger: Path, tmp_path: Path):
    result = run("export", "jsonl", "--month", "2026-11", "-e", "staging", "-o", str(tmp_path),
                 "--ledger", f"sqlite://{ledger}")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 1 record of 2026-11 (environment staging)" in result.stdout
    (line,) = (tmp_path / "usage-2026-11.staging.jsonl").read_text().splitlines()
    assert json.loads(line)["trace_id"] == f"{4:032x}"
    assert archive_name("2026-11", "eu/prod 1") == "usage-2026-11.eu_prod_1.jsonl"


def test_an_empty_month_is_an_empty_archive_and_says_so(ledger: Path, tmp_path: Path):
    result = run("export", "jsonl", "--month", "2025-02", "-o", f"{tmp_path}/h/", "--ledger", f"sqlite://{ledger}")
    assert result.exit_code == 0, result.output
    assert "note: the ledger has no records of 2025-02 (every environment): the archive is empty" in result.stderr
    assert (tmp_path / "h" / "usage-2025-02.jsonl").read_text() == ""


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "November", "2026-11-01"])
def test_a_month_that_is_not_yyyy_mm_is_refused(ledger: Path, tmp_path: Path, month: str):
    result = run("export", "jsonl", "--month", month, "-o", str(tmp_path), "--ledger", f"sqlite://{ledger}")
    assert result.exit_code == 2 and f"expected a month YYYY-MM, got {month!r}" in result.output
    assert list(tmp_path.glob("*.jsonl")) == []


def test_a_missing_ledger_is_an_error_and_creates_nothing(tmp_path: Path):
    missing = tmp_path / "nope" / "usage.db"
    result = run("export", "jsonl", "--month", "2026-11", "-o", str(tmp_path / "a.jsonl"), "--ledger",
                 f"sqlite://{missing}")  # fmt: skip
    assert result.exit_code == 1 and "no ledger at" in result.output
    assert not missing.parent.exists() and not (tmp_path / "a.jsonl").exists()


def test_a_second_export_replaces_the_archive_with_the_ledgers_records(ledger: Path, tmp_path: Path):
    path = tmp_path / "usage-2026-11.jsonl"
    with SQLiteStore(ledger) as store:
        export_month(store, "2026-11", path)
        store.write([record(11)])
        result = export_month(store, "2026-11", path)
    assert result.records == 9 and len(path.read_text().splitlines()) == 9
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_record_at_every_bound_round_trips(tmp_path: Path):
    """The longest line a record can make (every text at its bound, each character one JSON escapes) is still
    read back: an archive never holds a line that `import` refuses."""
    control = "\x01"
    fields: dict[str, Any] = {name: control * limit for name, limit in limits.TEXT_LIMITS.items()}
    fields.update(
        environment="e" * limits.MAX_NAME_CHARS,
        cost_source="c" * limits.MAX_NAME_CHARS,  # a manual record's origin is a name (a span's is a choice)
        record_source=RecordSource.MANUAL.value,
        tags={
            f"{n:03d}{control * (limits.MAX_TAG_KEY_CHARS - 3)}": control * limits.MAX_TAG_VALUE_CHARS
            for n in range(limits.MAX_TAGS)
        },
        amount=limits.MAX_AMOUNT_USD,
        input_tokens=limits.MAX_TOKENS,
        web_search_requests=limits.MAX_WEB_SEARCH_REQUESTS,
        duration_ms=limits.MAX_DURATION_MS,
    )
    widest = record(1, **fields)
    limits.check_record(widest)
    assert len(archive_line(widest)) > MAX_LINE_CHARS  # longer than any usage.jsonl line may be
    source, target = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db")
    with source, target:
        source.write([widest])
        export_month(source, "2026-11", tmp_path / "widest.jsonl", environment=widest.environment)
        assert import_usage_file(target, tmp_path / "widest.jsonl").new == 1
        (back,) = target.query(UsageQuery())
    assert back.to_dict() == widest.to_dict()


def test_an_export_writes_each_record_as_it_reads_it(tmp_path: Path):
    """Constant memory: the records go from the store's pages to the file as they arrive, never the whole month
    held at once. Watched from the store's side: when the store hands over record N, the temporary file already
    holds the records before it (but for what Python's write buffer keeps, a few lines)."""
    count = 3_000
    behind: list[int] = []

    class Watched:  # the real store; only its query is watched
        def __init__(self, store: SQLiteStore) -> None:
            self.store = store

        def query(self, query: UsageQuery) -> Iterator[LedgerRecord]:
            for n, one in enumerate(self.store.query(query)):
                if n and n % 1_000 == 0:
                    (partial,) = tmp_path.glob(".usage-2026-11.jsonl.*.partial")
                    behind.append(n - partial.read_bytes().count(b"\n"))
                yield one

    with SQLiteStore(tmp_path / "big.db") as store:
        store.write([record(n, timestamp=NOVEMBER + timedelta(seconds=n)) for n in range(1, count + 1)])
        result = export_month(Watched(store), "2026-11", tmp_path / "usage-2026-11.jsonl")  # type: ignore[arg-type]
    assert result.records == count and len(behind) == 2
    assert all(0 <= lag <= 10 for lag in behind), behind
