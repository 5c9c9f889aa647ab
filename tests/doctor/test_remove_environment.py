"""`remove_environment` (what `doctor --write-test` cleans up with) takes one environment's records, running
totals and rollups out of the ledger, over several days, months and write shards, and leaves every other
environment's figures exactly as they were. SQLite and DynamoDB."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dynamodb_server import LoopbackDynamoDB

from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

DAYS = [datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc), datetime(2026, 11, 1, 1, 0, tzinfo=timezone.utc)]
PERIODS = ["2026-10", "2026-11", "2026-10-31", "2026-11-01"]


def _records(environment: str) -> list[LedgerRecord]:
    return [
        LedgerRecord(
            trace_id=uuid.uuid4().hex,
            span_id=uuid.uuid4().hex[:16],
            timestamp=day,
            environment=environment,
            service="receipts",
            provider="openai",
            request_model="gpt-4o",
            response_model="gpt-4o",
            operation="chat",
            team="search",
            input_tokens=10 * n,
            amount=Decimal("0.001") * n,
        )
        for n in range(1, 6)
        for day in DAYS
    ]


def _figures(store: Any, environment: str) -> tuple[object, ...]:
    records = sorted(store.query(UsageQuery(environment=environment)), key=lambda r: (r.trace_id, r.span_id))
    return (records, *(store.totals(environment, period) for period in PERIODS))


def _check(store: Any) -> None:
    store.write(_records("production") + _records("otel-ai-cost-doctor"))
    kept = _figures(store, "production")
    assert store.totals("otel-ai-cost-doctor", "2026-11").calls == 5
    assert store.remove_environment("otel-ai-cost-doctor") == 10
    assert _figures(store, "production") == kept
    records, *totals = _figures(store, "otel-ai-cost-doctor")
    assert records == []
    assert [(t.calls, t.amount, t.by_provider_model, t.by_team) for t in totals] == [(0, Decimal(0), {}, {})] * 4
    assert store.remove_environment("otel-ai-cost-doctor") == 0  # nothing left: removing again is a no-op


def test_sqlite(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "usage.db")
    try:
        _check(store)
        assert [row.group for row in store.aggregate(UsageQuery(), ["environment"])] == [
            (("environment", "production"),)
        ]
    finally:
        store.close()


def test_dynamodb(
    server: LoopbackDynamoDB, dynamodb_url: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"ledger-{uuid.uuid4().hex[:8]}"
    store = DynamoDBStore.from_url(dynamodb_url(table, server.endpoint_url) + "&shards=4")
    try:
        store.ensure_table()
        _check(store)
        assert set(store.environments()) == {"production"}
        left = [item for item in server.client().scan(TableName=table)["Items"] if "doctor" in str(item)]
        assert left == []
    finally:
        store.close()
