"""The stores count the calls of unknown cost (`is_cost_unknown`), so every total can say it is a lower bound.

Not only `unpriced` calls: a stream closed before its usage arrived (`no_usage`, outcome `partial`), an answer
without usage (`no_usage`, `success`), a stream priced from the usage seen so far (`priced`, `partial`). The SQLite
store counts them in SQL (the daily rollup, the records, the version 3 migration's backfill) and the DynamoDB store
in Python; both must agree with the one Python rule for every combination of status, outcome and amount.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from dynamodb_server import REGION, LoopbackDynamoDB, fake_aws_environment, start_server

from otel_ai_cost.contract import Outcome, PricingStatus
from otel_ai_cost.ledger import sqlite_store
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.sqlite_store import SCHEMA_VERSION, SQLiteStore
from otel_ai_cost.ledger.store import AggregateRow, InvalidRecord, Totals, UsageQuery
from otel_ai_cost.ledger.unknown_cost import UNKNOWN_COST_SQL, cost_is_unknown, is_cost_unknown

T0 = datetime(2026, 1, 30, 12, 0, tzinfo=timezone.utc)
JOB = "job-combinations"
# Every combination a record can hold: pricing status x outcome x amount present or not.
COMBINATIONS = list(itertools.product(PricingStatus, Outcome, (True, False)))


def _combination_records() -> list[LedgerRecord]:
    """One record per combination, each in a service of its own (so each is a group of its own)."""
    made = []
    for n, (status, outcome, has_amount) in enumerate(COMBINATIONS, start=1):
        made.append(
            LedgerRecord(
                f"{n:032x}",
                f"{n:016x}",
                T0 + timedelta(minutes=n),
                environment="production",
                service=f"{status.value}-{outcome.value}-{'amount' if has_amount else 'none'}",
                provider="openai",
                request_model="gpt-4o-mini",
                operation="chat",
                input_tokens=10,
                output_tokens=2,
                amount=Decimal("0.25") if has_amount else None,
                pricing_status=status.value,
                outcome=outcome.value,
                error_type="RateLimitError" if outcome is Outcome.ERROR else "",
                job_id=JOB,
            )
        )
    return made


RECORDS = _combination_records()
EXPECTED = {r.service: int(is_cost_unknown(r)) for r in RECORDS}


def _unknown_by_service(store: Any, query: UsageQuery) -> dict[str, int]:
    return {dict(row.group)["service"]: row.unknown_cost_calls for row in store.aggregate(query, ["service"])}


# -- the rule in SQL is the rule in Python ----------------------------------------------------------------------


def test_the_expected_counts_cover_known_and_unknown_costs():
    assert 0 < sum(EXPECTED.values()) < len(EXPECTED)  # the combinations exercise both answers


@pytest.mark.parametrize("status", [*(s.value for s in PricingStatus), "estimated", None])
@pytest.mark.parametrize("outcome", [*(o.value for o in Outcome), "cancelled", None])
@pytest.mark.parametrize("amount", ["0.25", None])
def test_the_sql_rule_is_the_python_rule_for_any_value(status: str | None, outcome: str | None, amount: str | None):
    # Values a newer version or an import may have left in the file, NULL included.
    conn = sqlite3.connect(":memory:")
    (sql,) = conn.execute(
        f"SELECT {UNKNOWN_COST_SQL} FROM (SELECT ? AS pricing_status, ? AS outcome, ? AS amount)",
        (status, outcome, amount),
    ).fetchone()
    conn.close()
    # A NULL column reads back as "" (`SQLiteStore.query`).
    record = replace(RECORDS[0], amount=None if amount is None else Decimal(amount), pricing_status=status or "",
                     outcome=outcome or "")  # fmt: skip
    assert sql == int(is_cost_unknown(record))


def test_sqlite_counts_every_combination_from_the_rollup_and_from_the_records(ledger_path: Path):
    with SQLiteStore(ledger_path) as store:
        assert store.write(RECORDS).written == len(RECORDS)
        assert _unknown_by_service(store, UsageQuery()) == EXPECTED  # the daily rollup
        assert _unknown_by_service(store, UsageQuery(job_id=JOB)) == EXPECTED  # the records (by job)
        # Written again: duplicates add nothing.
        assert store.write(RECORDS).duplicates == len(RECORDS)
        (row,) = store.aggregate(UsageQuery(), [])
        assert (row.calls, row.unknown_cost_calls) == (len(RECORDS), sum(EXPECTED.values()))
        for period in ("2026-01-30", "2026-01"):
            totals = store.totals("production", period)
            assert (totals.calls, totals.unknown_cost_calls) == (len(RECORDS), sum(EXPECTED.values()))
        assert store.totals("staging", "2026-01").unknown_cost_calls == 0


def _unknown_record(n: int) -> LedgerRecord:
    """A stream closed before its usage arrived (`no_usage`, `partial`), in the rollup row of its combination."""
    (stream,) = [r for r in RECORDS if (r.pricing_status, r.outcome, r.amount) == ("no_usage", "partial", None)]
    return replace(stream, trace_id=f"{n:032x}", span_id=f"{n:016x}")


def test_sqlite_rollup_counts_calls_written_one_by_one_into_the_same_row(ledger_path: Path):
    with SQLiteStore(ledger_path) as store:
        for n in range(3):  # one rollup row, updated by the upsert
            store.write([_unknown_record(900 + n)])
        (row,) = store.aggregate(UsageQuery(), ["service"])
        assert (row.calls, row.unknown_cost_calls, row.unpriced_calls) == (3, 3, 0)


def test_the_rollups_overflow_guard_covers_the_new_count(ledger_path: Path):
    with SQLiteStore(ledger_path) as store:
        store.write([_unknown_record(900)])
        conn = sqlite3.connect(ledger_path)
        conn.execute(f"UPDATE daily SET unknown_cost_calls = {2**63 - 1}")
        conn.commit()
        conn.close()
        with pytest.raises(InvalidRecord, match="overflow"):  # never a float in the rollup
            store.write([_unknown_record(901)])
        assert len(list(store.query(UsageQuery()))) == 1  # nothing of the refused write was stored


# -- SQLite: version 2 -> 3 -------------------------------------------------------------------------------------

# The daily rollup of version 2 (and 1) exactly, without `unknown_cost_calls`.
_V2_DAILY_COLUMNS = [
    "day", "environment", "service", "provider", "request_model", "response_model", "operation", "operation_type",
    "team", "model", "calls", "unpriced_calls", "amount_micro", "amount_pico", "amount_residual", "input_tokens",
    "output_tokens", "cache_read_input_tokens", "cache_write_5m_input_tokens", "cache_write_1h_input_tokens",
    "reasoning_output_tokens",
]  # fmt: skip


def _daily_columns(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(daily)")]
    finally:
        conn.close()


def _write_v2_file(path: Path) -> None:
    """A version 2 ledger holding every combination: written, then given back the version 2 rollup table."""
    with SQLiteStore(path) as store:
        store.write(RECORDS)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE daily DROP COLUMN unknown_cost_calls")
    for column in sqlite_store._ADDED_COLUMNS[5]:  # what version 5 added to the records
        conn.execute(f"ALTER TABLE records DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    assert _daily_columns(path) == _V2_DAILY_COLUMNS


def test_a_version_2_file_is_migrated_and_its_rollup_counts_the_calls_of_unknown_cost(ledger_path: Path):
    _write_v2_file(ledger_path)
    with SQLiteStore(ledger_path) as store:
        assert _unknown_by_service(store, UsageQuery()) == EXPECTED  # backfilled from the records, same rule
        assert store.totals("production", "2026-01").unknown_cost_calls == sum(EXPECTED.values())
        store.write([_unknown_record(900)])  # and counted from then on
        assert store.totals("production", "2026-01").unknown_cost_calls == sum(EXPECTED.values()) + 1
    assert _daily_columns(ledger_path) == [*_V2_DAILY_COLUMNS, "unknown_cost_calls"]
    conn = sqlite3.connect(ledger_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    conn.close()


def test_a_new_file_is_a_migrated_version_2_file(ledger_path: Path):
    with SQLiteStore(ledger_path):
        pass
    assert _daily_columns(ledger_path) == [*_V2_DAILY_COLUMNS, "unknown_cost_calls"]


# -- DynamoDB -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[LoopbackDynamoDB]:
    running = start_server()
    yield running
    running.stop()


@pytest.fixture
def dynamodb_store(dynamodb: LoopbackDynamoDB, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDBStore]:
    fake_aws_environment(monkeypatch)
    store = DynamoDBStore(f"unknown-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=dynamodb.endpoint_url,
                          shards=2)  # fmt: skip
    store.ensure_table()
    yield store
    store.close()


def test_dynamodb_counts_every_combination_in_aggregates_and_running_totals(dynamodb_store: DynamoDBStore):
    assert dynamodb_store.write(RECORDS).written == len(RECORDS)
    assert _unknown_by_service(dynamodb_store, UsageQuery(environment="production")) == EXPECTED
    for period in ("2026-01-30", "2026-01"):
        totals = dynamodb_store.totals("production", period)
        assert (totals.calls, totals.unknown_cost_calls) == (len(RECORDS), sum(EXPECTED.values()))
    dynamodb_store.write(RECORDS)  # duplicates add nothing
    assert dynamodb_store.totals("production", "2026-01").unknown_cost_calls == sum(EXPECTED.values())


def test_dynamodb_totals_written_before_the_count_give_a_lower_bound_until_rebuilt(dynamodb_store: DynamoDBStore):
    dynamodb_store.write(RECORDS)
    client = dynamodb_store.client
    items = client.scan(TableName=dynamodb_store.table, FilterExpression="attribute_exists(unknown_cost_calls)")
    assert items["Items"]  # the running-total items carry the count
    for item in items["Items"]:  # as an older version left them: no such attribute
        key = {"PK": item["PK"], "SK": item["SK"]}
        client.update_item(TableName=dynamodb_store.table, Key=key, UpdateExpression="REMOVE unknown_cost_calls")
    unpriced = sum(r.pricing_status == "unpriced" for r in RECORDS)
    assert dynamodb_store.totals("production", "2026-01").unknown_cost_calls == unpriced  # known to be unknown
    dynamodb_store.rebuild_totals("production", "2026-01")
    assert dynamodb_store.totals("production", "2026-01").unknown_cost_calls == sum(EXPECTED.values())


# -- the query API: /v1/usage and /ai_usage -----------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LedgerService]:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.write(RECORDS)
    with LedgerService(store, ServiceConfig(port=0)) as running:
        running.clock = lambda: T0
        yield running


def _get(ledger: LedgerService, route: str, /, **params: str) -> dict[str, Any]:
    response = requests.get(f"{ledger.url}{route}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_v1_usage_rows_and_summary_count_the_calls_of_unknown_cost(service: LedgerService):
    for params in ({"aggregation": "service"}, {"aggregation": "service", "job_id": JOB}):
        document = _get(service, "/v1/usage", **params)
        rows = {row["service"]: row for row in document["rows"]}
        assert {name: row["unknown_cost_calls"] for name, row in rows.items()} == EXPECTED
        for name, row in rows.items():
            assert ("lower bound" in row.get("note", "")) is bool(EXPECTED[name])
        summary = document["summary"]
        assert summary["unknown_cost_calls"] == sum(EXPECTED.values())
        assert summary["note"] == f"{sum(EXPECTED.values())} call(s) of unknown cost: amount is a lower bound"


def test_v1_usage_of_known_costs_only_has_no_note(service: LedgerService):
    document = _get(service, "/v1/usage", aggregation="service", service="priced-success-amount")
    assert document["summary"]["unknown_cost_calls"] == 0 and "note" not in document["summary"]
    assert document["rows"][0]["unknown_cost_calls"] == 0 and "note" not in document["rows"][0]


def test_ai_usage_summary_and_groups_count_the_calls_of_unknown_cost(service: LedgerService):
    document = _get(service, "/ai_usage", start_date="2026-01-01", aggregation="day,service,model,hour")
    unknown = sum(EXPECTED.values())
    unpriced = sum(r.pricing_status == "unpriced" for r in RECORDS)
    assert unknown > unpriced  # partial streams and answers without usage are counted, not only unpriced calls
    summary = document["summary"]
    assert (summary["unknown_cost_calls"], summary["unpriced_calls"]) == (unknown, unpriced)
    assert summary["note"] == f"{unknown} call(s) of unknown cost: total_cost_usd is a lower bound"
    aggregations = document["aggregations"]
    for group in (aggregations["by_day"]["2026-01-30"], aggregations["by_service"]["openai"],
                  aggregations["by_model"]["gpt-4o-mini"]):  # fmt: skip
        assert (group["unknown_cost_calls"], group["unpriced_calls"]) == (unknown, unpriced)
    assert sum(g["unknown_cost_calls"] for g in aggregations["by_hour"].values()) == unknown
    assert sum(g["unpriced_calls"] for g in aggregations["by_hour"].values()) == unpriced


def test_a_row_or_total_made_without_the_count_still_counts_its_unpriced_calls():
    # Code that builds rows without knowing the count (merging two rows, summing totals) never shows fewer calls of
    # unknown cost than unpriced ones: those are unknown by definition.
    row = AggregateRow((), Decimal("1"), 5, 2, 0, 0, 0, 0, 0)
    assert row.unknown_cost_calls == 2
    assert AggregateRow((), Decimal("1"), 5, 2, 0, 0, 0, 0, 0, unknown_cost_calls=3).unknown_cost_calls == 3
    totals = Totals("2026-01", "production", Decimal("1"), 5, 2, {})
    assert totals.unknown_cost_calls == 2


# -- docs/ledger.md says the same rule ----------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def test_the_documented_table_of_unknown_costs_is_the_rule():
    lines = DOC.read_text(encoding="utf-8").splitlines()
    head = lines.index("| `pricing_status` | outcome `success` | outcome `error` | outcome `partial` |")
    outcomes = [cell.split("`")[1] for cell in lines[head].strip("|").split("|")[1:]]
    documented = {}
    for line in lines[head + 2 :]:
        if not line.startswith("|"):
            break
        status, *answers = (cell.strip() for cell in line.strip("|").split("|"))
        for outcome, answer in zip(outcomes, answers, strict=True):
            documented[(status.strip("`"), outcome)] = answer == "unknown"
    assert documented == {
        (status.value, outcome.value): cost_is_unknown(status.value, outcome.value)
        for status in PricingStatus
        for outcome in Outcome
    }
