"""`import legacy-dynamodb` against a real DynamoDB API (moto on loopback): a legacy table read to the end, in
pages and segments, resumed after Ctrl-C, into a SQLite ledger and into the DynamoDB ledger, and the command's
output and exit status."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dynamodb_server import REGION, LoopbackDynamoDB
from legacy_items import BASE_TIME, legacy_item, receipt_item

from otel_ai_cost.cli import main
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery
from otel_ai_cost.migrate.legacy_item import MappingDefaults, environment_from_table, legacy_identity
from otel_ai_cost.migrate.legacy_scan import (
    Checkpoint,
    CheckpointError,
    LegacyImportCancelled,
    LegacyImportResult,
    import_legacy_table,
)

MakeTable = Callable[..., str]  # the `legacy_table` fixture (conftest.py)


def metrics(count: int, **fields: Any) -> list[dict[str, Any]]:
    """`count` priced openai calls a minute apart, request ids req-0000.., costing 0.0001 + n/10^9 USD each."""
    return [
        legacy_item(
            request_id=f"req-{n:04d}",
            timestamp=BASE_TIME + timedelta(minutes=n),
            input_tokens=100 + n,
            output_tokens=10,
            cost_usd=float(f"0.0001{n:05d}"),
            **fields,
        )
        for n in range(count)
    ]


def run(client: Any, table: str, store: Any, **options: Any) -> LegacyImportResult:
    defaults = MappingDefaults(table_environment=environment_from_table(table))
    return import_legacy_table(client, table, store, defaults=defaults, **options)


def stored(store: Any) -> dict[str, Any]:
    return {record.tags["legacy.request_id"]: record for record in store.query(UsageQuery())}


def test_a_table_is_imported_once_and_a_rerun_changes_nothing(
    legacy_table: MakeTable, legacy_client: Any, sqlite_ledger: SQLiteStore
):
    items = [
        legacy_item(request_id="exact", cost_usd=0.000123456789, input_tokens=1000, output_tokens=20),
        legacy_item(request_id="unpriced", input_tokens=5, output_tokens=1),
        *metrics(3),
    ]
    table = legacy_table([*items, receipt_item(1), receipt_item(2)])
    first = run(legacy_client, table, sqlite_ledger)
    again = run(legacy_client, table, sqlite_ledger)
    assert (first.scanned, first.imported, first.already_present, first.not_imported) == (5, 5, 0, 0)
    assert (again.scanned, again.imported, again.already_present, again.not_imported) == (5, 0, 5, 0)
    records = stored(sqlite_ledger)
    assert sorted(records) == ["exact", "req-0000", "req-0001", "req-0002", "unpriced"]  # no receipt
    assert format(records["exact"].amount, "f") == "0.000123456789"
    assert records["unpriced"].amount is None
    assert {r.environment for r in records.values()} == {"production"}  # ReceiptsTable-prod-...
    (row,) = sqlite_ledger.aggregate(UsageQuery(), ["environment"])
    assert (row.calls, row.unknown_cost_calls) == (5, 1)
    assert row.amount == Decimal("0.000123456789") + sum(Decimal(f"0.0001{n:05d}") for n in range(3))


def test_an_unmappable_item_is_reported_with_its_keys_and_the_rest_imported(
    legacy_table: MakeTable, legacy_client: Any, sqlite_ledger: SQLiteStore
):
    bad = legacy_item(request_id="bad-cost", cost_usd=0.5)
    bad["costUSD"] = {"S": "0.5"}
    no_id = legacy_item(request_id="ignored")
    del no_id["requestId"]
    table = legacy_table([*metrics(2), bad, no_id])
    result = run(legacy_client, table, sqlite_ledger)
    assert (result.imported, result.unmappable, result.not_imported) == (2, 2, 2)
    reasons = {problem.keys.sk: problem.reason for problem in result.problems}
    assert reasons == {
        bad["SK"]["S"]: "costUSD must be a number (N), got S '0.5'",
        no_id["SK"]["S"]: "no requestId",
    }


def test_many_pages_in_two_segments_are_all_read(
    legacy_table: MakeTable, legacy_client: Any, sqlite_ledger: SQLiteStore
):
    table = legacy_table([*metrics(40), *(receipt_item(n) for n in range(10))])
    result = run(legacy_client, table, sqlite_ledger, segments=2, page_size=4)
    assert (result.scanned, result.imported) == (40, 40)
    assert result.pages >= 50 // 4  # Limit counts items read before the filter: at least 13 pages
    assert len(stored(sqlite_ledger)) == 40


def test_an_interrupted_import_continues_from_its_resume_file(
    legacy_table: MakeTable, legacy_client: Any, sqlite_ledger: SQLiteStore, tmp_path: Path
):
    table = legacy_table(metrics(30))
    resume = tmp_path / "resume" / "legacy.json"

    def ctrl_c_after_three_pages(result: LegacyImportResult) -> None:
        if result.pages == 3:
            raise KeyboardInterrupt

    with pytest.raises(LegacyImportCancelled) as cancelled:
        run(legacy_client, table, sqlite_ledger, segments=2, page_size=4, resume_file=resume,
            on_page=ctrl_c_after_three_pages)  # fmt: skip
    first = cancelled.value.result
    assert f"continue from {resume}" in str(cancelled.value)
    saved = json.loads(resume.read_text())
    assert (saved["table"], saved["segments"]) == (table, 2)
    assert len(stored(sqlite_ledger)) == first.imported == first.scanned < 30

    rest = run(legacy_client, table, sqlite_ledger, resume_file=resume)  # the file's segment count
    assert rest.resumed and rest.finished
    assert first.scanned + rest.scanned == 30  # continued: nothing read twice
    assert (rest.imported, rest.already_present) == (30 - first.imported, 0)
    assert len(stored(sqlite_ledger)) == 30
    assert not resume.exists()  # done: the next run reads the whole table again


def test_a_resume_file_of_another_import_is_refused(legacy_table: MakeTable, legacy_client: Any, tmp_path: Path):
    resume = tmp_path / "legacy.json"
    Checkpoint.open(resume, "ReceiptsTable-dev-abc123", 3).save()
    table = legacy_table(metrics(1))
    with SQLiteStore(tmp_path / "ledger.db") as store:
        with pytest.raises(CheckpointError, match="resume file of table ReceiptsTable-dev-abc123"):
            run(legacy_client, table, store, resume_file=resume)
        with pytest.raises(CheckpointError, match="written with --segments 3"):
            run(legacy_client, "ReceiptsTable-dev-abc123", store, resume_file=resume, segments=2)


def test_into_the_dynamodb_ledger_exactly_and_a_cost_it_cannot_hold_is_reported(
    server: LoopbackDynamoDB, legacy_table: MakeTable, legacy_client: Any
):
    float_artefact = legacy_item(request_id="float-artefact", cost_usd=1.4999999999999999e-05)  # 21 places
    too_fine = legacy_item(request_id="too-fine", cost_usd=1e-30)  # 30 decimal places: no float cost is this small
    exact = legacy_item(request_id="exact", cost_usd=0.000123456789)
    table = legacy_table([*metrics(3), exact, float_artefact, too_fine], stack="dev")
    store = DynamoDBStore(f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url)
    store.ensure_table()
    try:
        first = run(legacy_client, table, store, segments=2, page_size=2)
        again = run(legacy_client, table, store)
        records = stored(store)
    finally:
        store.close()
    assert (first.imported, first.refused, again.imported, again.already_present) == (5, 1, 0, 5)
    (problem,) = first.problems
    assert problem.keys.sk == too_fine["SK"]["S"]
    assert "more than 24 decimal places" in problem.reason
    assert format(records["exact"].amount, "f") == "0.000123456789"
    assert format(records["float-artefact"].amount, "f") == "0.000014999999999999999"  # as the item's number text
    assert records["exact"].environment == "development"  # ReceiptsTable-dev-...
    assert (records["exact"].trace_id, records["exact"].span_id) == legacy_identity("exact")


# -- the command ---------------------------------------------------------------------------------------------


def cli(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(main, ["import", "legacy-dynamodb", *args], env=env, catch_exceptions=False)


def test_the_command_reads_the_usual_aws_settings_and_says_what_it_did(
    server: LoopbackDynamoDB, legacy_table: MakeTable, tmp_path: Path
):
    bad = legacy_item(request_id="bad-tokens")
    bad["inputTokens"] = {"N": "12.5"}
    table = legacy_table([*metrics(4), bad, receipt_item(1)], stack="stage")
    ledger = f"sqlite://{tmp_path / 'ledger.db'}"
    env = {"AWS_ENDPOINT_URL_DYNAMODB": server.endpoint_url, "AWS_REGION": REGION, "OTEL_AI_COST_LEDGER": ledger}

    first = cli(["--table", table, "--segments", "2"], env)
    assert first.exit_code == 1  # an item was not imported
    assert f"{table}: 5 AIUsageMetric items read: 4 imported, 0 already present, 1 not imported" in first.stdout
    assert f"not imported: PK={bad['PK']['S']!r} SK={bad['SK']['S']!r}: inputTokens must be" in first.stderr
    assert "environment: the item's own, else staging (from the table name)" in first.stderr
    assert "testing" not in first.output  # the (fake) credentials are never shown

    del bad["inputTokens"]  # fixed in the table: the next run imports it, and nothing else changes
    LoopbackDynamoDB.client(server).put_item(TableName=table, Item=bad)
    again = cli(["--table", table, "--environment", "production"], env)
    assert again.exit_code == 0, again.output
    assert "5 AIUsageMetric items read: 1 imported, 4 already present, into sqlite://" in again.stdout
    with SQLiteStore(tmp_path / "ledger.db") as store:
        environments = {r.tags["legacy.request_id"]: r.environment for r in store.query(UsageQuery())}
    assert environments == {"req-0000": "staging", "req-0001": "staging", "req-0002": "staging",
                            "req-0003": "staging", "bad-tokens": "production"}  # fmt: skip


def test_the_command_names_a_missing_table(server: LoopbackDynamoDB, tmp_path: Path):
    env = {"OTEL_AI_COST_LEDGER": f"sqlite://{tmp_path / 'ledger.db'}"}
    result = cli(["--table", "ReceiptsTable-prod-nope", "--endpoint-url", server.endpoint_url, "--region", REGION], env)
    assert result.exit_code == 1
    assert "no table ReceiptsTable-prod-nope in region us-east-1" in result.output
    assert not (tmp_path / "ledger.db").exists()  # nothing was written, not even an empty ledger
