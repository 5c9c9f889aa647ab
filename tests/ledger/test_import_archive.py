"""`import` of a monthly archive (`export jsonl`): archive lines are recognised by their shape, kept as the records
they were (own identity, every field), validated against every bound of the ledger, and never confused with the
seeds' `usage.jsonl` lines, which keep importing as before; also through DynamoDB."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dynamodb_server import REGION, LoopbackDynamoDB

from conftest import MakeRecord, build_record
from otel_ai_cost.cli import main
from otel_ai_cost.exports.jsonl import archive_line, expected_records, export_month
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.manual import UsageFileError, content_identity, import_usage_file, parse_usage_lines
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import BilledQuery, UsageQuery

SEED_LINE = '{"timestamp": "2026-01-30T14:00:00Z", "service": "openai", "cost_usd": 45.23, "source": "import"}'


def line_of(**overrides: Any) -> str:
    """An archive line of record 1 with some keys replaced (None removes the key)."""
    data = json.loads(archive_line(build_record(1)))
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return json.dumps(data)


def test_archive_lines_and_seed_lines_in_one_file_each_import_their_way(sqlite_store: SQLiteStore, tmp_path: Path):
    archived = build_record(7, tags={"k": "v"}, cicd_run_id="99", amount=Decimal("0.10"))
    usage = tmp_path / "mixed.jsonl"
    usage.write_text(f"{archive_line(archived)}\n\n{SEED_LINE}\n", encoding="utf-8")
    result = import_usage_file(sqlite_store, usage, environment="staging")
    assert (result.new, result.already_recorded, result.billed) == (2, 0, 0)
    by_source = {r.record_source: r for r in sqlite_store.query(UsageQuery())}
    assert by_source["span"].to_dict() == archived.to_dict()  # its own ids, "0.10" as written, environment kept
    seed = by_source["import"]
    assert (seed.amount, seed.environment, seed.provider) == (Decimal("45.23"), "staging", "openai")
    assert seed.key == content_identity(seed)  # a seed line's identity still derives from its content


def test_an_archived_dashboard_entry_stays_a_record(sqlite_store: SQLiteStore, tmp_path: Path):
    """A usage.jsonl line read off a dashboard is a billed figure; an archived record is spend as it was stored,
    whatever its cost_source."""
    entry = build_record(3, record_source="manual", cost_source="dashboard", service="manual")
    usage = tmp_path / "archive.jsonl"
    usage.write_text(archive_line(entry) + "\n")
    result = import_usage_file(sqlite_store, usage)
    assert (result.new, result.billed) == (1, 0)
    assert [r.to_dict() for r in sqlite_store.query(UsageQuery())] == [entry.to_dict()]
    assert sqlite_store.billed_lines(BilledQuery(date(2026, 1, 1), date(2026, 12, 31))) == []


def test_an_identity_already_in_the_ledger_is_never_counted_twice(sqlite_store: SQLiteStore, tmp_path: Path):
    sqlite_store.write([build_record(5)])
    changed = build_record(5, amount=Decimal("99"))  # same ids, other content: the stored record is kept
    usage = tmp_path / "archive.jsonl"
    usage.write_text(archive_line(changed) + "\n" + archive_line(build_record(6)) + "\n")
    result = import_usage_file(sqlite_store, usage)
    assert (result.new, result.already_recorded) == (1, 1)
    assert [r.amount for r in sqlite_store.query(UsageQuery())] == [Decimal("0.000027"), Decimal("0.000027")]
    assert sqlite_store.totals("production", "2026-01").calls == 2


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"amount": "NaN"}, "amount must be exact decimal text"),
        ({"amount": "1_000"}, "amount must be exact decimal text"),
        ({"amount": True}, "amount must be exact decimal text"),
        ({"amount": "10000001"}, "amount must be from 0 to 10000000 USD per record"),
        ({"computed_amount": "1e-31"}, "computed_amount has more than 30 decimal places"),
        ({"input_tokens": 10**10}, "input_tokens must be a non-negative integer of at most 1000000000"),
        ({"output_tokens": "20"}, "output_tokens must be a non-negative integer"),
        ({"trace_id": "XYZ"}, "trace_id must be 32 lowercase hex digits"),
        ({"span_id": None}, "an archive line without span_id"),
        ({"environment": ""}, "environment must not be empty"),
        ({"timestamp": "2026-01-30T12:00:00"}, "timestamp must include a timezone"),
        ({"timestamp": "1999-12-31T23:00:00Z", "day": "1999-12-31"}, "timestamp must be from 2000 to 2100"),
        ({"day": "2026-01-31"}, "day '2026-01-31' is not the UTC day of the timestamp (2026-01-30)"),
        ({"schema_version": 2}, "schema_version must be from 1 to 1"),
        ({"outcome": "maybe"}, "outcome must be one of success, error, partial"),
        ({"tags": ["a"]}, "tags must be a JSON object of texts"),
        ({"tags": {"k": 1}}, "tag 'k' must be text"),
        ({"duration_ms": "5"}, "duration_ms must be a number"),
        ({"team": None, "amout": "1"}, "unknown key(s) amout in an archive line"),
        ({"note": None, "job_id": None}, None),  # absent optional fields take their defaults
    ],
)
def test_every_archived_record_is_validated_against_the_ledgers_bounds(overrides: dict[str, Any], problem: str | None):
    line = line_of(**overrides)
    if problem is None:
        (parsed,) = parse_usage_lines([line])
        assert (parsed.note, parsed.job_id, parsed.key) == ("", "", build_record(1).key)
        return
    with pytest.raises(UsageFileError) as raised:
        parse_usage_lines([SEED_LINE, line], path="archive.jsonl")
    assert f"archive.jsonl:2: {problem}" in str(raised.value), str(raised.value)
    assert str(raised.value).endswith("nothing was imported")


def test_a_bad_archive_line_imports_nothing(tmp_path: Path, ledger_path: Path):
    usage = tmp_path / "archive.jsonl"
    usage.write_text("\n".join([archive_line(build_record(1)), line_of(amount="-1"), SEED_LINE]) + "\n")
    result = CliRunner().invoke(main, ["import", str(usage), "--ledger", f"sqlite://{ledger_path}"])
    assert result.exit_code == 1 and f"{usage}:2: amount must be exact decimal text" in result.output
    with SQLiteStore(ledger_path) as store:
        assert list(store.query(UsageQuery())) == []


def test_a_usage_line_is_not_taken_for_an_archive_line():
    """Only a line with both `schema_version` and `trace_id` is a record; a usage line naming one of them is a
    usage line with an unknown key, as before (a misspelt key must not import as something else)."""
    with pytest.raises(UsageFileError, match="unknown key\\(s\\) trace_id; accepted"):
        parse_usage_lines([json.dumps({**json.loads(SEED_LINE), "trace_id": "0" * 32})])


@pytest.mark.usefixtures("aws_environment")
def test_a_dynamodb_ledger_archived_and_imported_back_changes_nothing(
    server: LoopbackDynamoDB, tmp_path: Path, make_record: MakeRecord
):
    store = DynamoDBStore(f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url)
    store.ensure_table()
    records = [make_record(tags={"n": str(n)}, team="payments") for n in range(5)]
    records += [make_record(environment="staging", amount=None, pricing_status="unpriced")]
    records += [make_record(timestamp=records[0].timestamp.replace(month=2, day=1))]  # another month
    store.write(records)
    archive = tmp_path / "usage-2026-01.jsonl"
    try:
        assert expected_records(store, "2026-01") == 6  # from the running totals of each registered environment
        assert expected_records(store, "2026-01", "staging") == 1
        result = export_month(store, "2026-01", archive)
        assert result.records == 6 and result.amount == Decimal("0.000135") and result.unknown_cost_calls == 1
        back = import_usage_file(store, archive)
        assert (back.new, back.already_recorded) == (0, 6)
        assert store.totals("production", "2026-01").calls == 5
    finally:
        store.close()
    with SQLiteStore(tmp_path / "copy.db") as copy:
        assert import_usage_file(copy, archive).new == 6
        january = sorted((r for r in records if r.month == "2026-01"), key=lambda r: (r.timestamp, r.key))
        assert [r.to_dict() for r in copy.query(UsageQuery())] == [r.to_dict() for r in january]
