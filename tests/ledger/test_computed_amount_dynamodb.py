"""`computed_amount` in the DynamoDB store, against a real DynamoDB-API server (moto) on loopback: stored as an
exact Number (absent when None), read back exactly, and compared in aggregates; totals stay on `amount` only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dynamodb_server import REGION, LoopbackDynamoDB, make_record

from otel_ai_cost.contract import CostSource
from otel_ai_cost.ledger import dynamodb_schema as schema
from otel_ai_cost.ledger.dynamodb_schema import InvalidRecord
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

PROVIDER = CostSource.PROVIDER.value


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


@pytest.fixture
def store(server: LoopbackDynamoDB) -> Iterator[DynamoDBStore]:
    store = DynamoDBStore(f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url, shards=4)
    store.ensure_table()
    yield store
    store.close()


def _xai(n: int, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "provider": "xai",
        "request_model": "grok-4",
        "response_model": "grok-4-0709",
        "amount": Decimal("0.0123"),
        "computed_amount": Decimal("0.0120"),
        "cost_source": PROVIDER,
    }
    values.update(fields)
    return make_record(n, **values)


def _records() -> list[Any]:
    return [
        _xai(1),
        _xai(2, amount=Decimal("0.1"), computed_amount=Decimal("0.100000000000001")),
        _xai(3, amount=Decimal("0.05"), computed_amount=None),  # reported; the catalog had no price
        make_record(4, amount=Decimal("0.2")),  # priced locally
        _xai(
            5, amount=None, computed_amount=None, pricing_status="unpriced", request_model="grok-x", response_model=""
        ),
    ]


def _raw(server: LoopbackDynamoDB, store: DynamoDBStore, n: int) -> dict[str, Any]:
    key = {"PK": {"S": f"ENV#production#TRACE#{n:032x}"}, "SK": {"S": f"SPAN#{n + 1:016x}"}}
    return server.client().get_item(TableName=store.table, Key=key)["Item"]


def test_stored_as_an_exact_number_and_absent_when_none(server: LoopbackDynamoDB, store: DynamoDBStore) -> None:
    records = _records()
    assert store.write(records).written == len(records)

    assert _raw(server, store, 1)["computed_amount"] == {"N": "0.0120"}
    assert _raw(server, store, 2)["computed_amount"] == {"N": "0.100000000000001"}
    assert "computed_amount" not in _raw(server, store, 3)
    assert "computed_amount" not in _raw(server, store, 4)

    assert list(store.query(UsageQuery())) == records  # read back exactly, None where absent


def test_an_item_written_before_the_field_reads_as_none(server: LoopbackDynamoDB, store: DynamoDBStore) -> None:
    item = schema.record_item(make_record(7), shard=0, expires_at=None)
    assert "computed_amount" not in item
    assert schema.record_from_item(item).computed_amount is None


def test_a_computed_amount_dynamodb_would_round_is_refused(store: DynamoDBStore) -> None:
    too_precise = Decimal("0.123456789012345678901234567890123456789")  # 39 significant digits
    with pytest.raises(InvalidRecord, match="computed_amount"):
        store.write([make_record(1), _xai(2, computed_amount=too_precise)])
    assert list(store.query(UsageQuery())) == []


def test_aggregates_compare_like_sqlite_and_totals_stay_on_amount(store: DynamoDBStore, tmp_path: Path) -> None:
    records = _records()
    store.write(records)
    with SQLiteStore(tmp_path / "ledger.db") as sqlite:
        sqlite.write(records)
        for group_by in (["provider"], ["provider", "model"], [], ["job_id"]):
            assert store.aggregate(UsageQuery(), group_by) == sqlite.aggregate(UsageQuery(), group_by), group_by

    rows = {dict(r.group)["provider"]: r for r in store.aggregate(UsageQuery(), ["provider"])}
    assert (rows["xai"].amount, rows["xai"].computed_amount) == (Decimal("0.1623"), Decimal("0.162000000000001"))
    assert rows["openai"].computed_amount is None
    assert store.totals("production", "2026-11").amount == Decimal("0.3623")
